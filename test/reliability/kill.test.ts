// Crash safety under SIGKILL: `ftune train` (LoRA on stories260K-hf, a checkpoint every
// 2 steps, rotation to 2) is killed at seeded random moments of its training phase,
// including inside checkpoint and final writes. After each kill every checkpoint-N loads
// (trainer_state.json, optimizer.safetensors, the adapter), no file under a final name is
// partial (temp names may remain), and `--resume-from-checkpoint latest` (or a fresh run
// when no checkpoint was written yet) ends with adapter bytes equal to an uninterrupted
// run's and no temp names left. FTUNE_KILL_TRIALS (default 10; `npm run test:kill-long`
// runs 50) and FTUNE_KILL_SEED choose the trials.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isTempName } from '../../src/io/atomic.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { AutoModelForCausalLM } from '../../src/models/auto.js';
import { PeftModel } from '../../src/peft/index.js';
import { TOKENIZER_FILES } from '../../src/tokenizer/files.js';
import { loadTrainerState } from '../../src/train/state.js';
import { fixture } from '../helpers/data.js';
import { Rng } from '../helpers/random.js';
import { shakespeareJsonl } from '../helpers/train.js';

const CLI = resolve('dist/src/cli/main.js');
const TRIALS = Number(process.env['FTUNE_KILL_TRIALS'] ?? '10');
const SEED = Number(process.env['FTUNE_KILL_SEED'] ?? '20240611');
// One thread: the runs are short and the suite's machine is often busy; results are the same for any thread count per ISA.
const ENV = { ...process.env, FTUNE_THREADS: '1' };

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from the "training ..." line to exit. */
  trainMs: number;
}

/** Runs `ftune ...args`; with killAfterMs, sends SIGKILL that long after training starts. */
function run(args: string[], killAfterMs?: number): Promise<RunResult> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: ENV });
    let stdout = '';
    let stderr = '';
    let started = 0;
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (started === 0 && /^training /m.test(stderr)) {
        started = performance.now();
        if (killAfterMs !== undefined) setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.on('close', (code, signal) => done({ code, signal, stdout, stderr, trainMs: started === 0 ? 0 : performance.now() - started }));
  });
}

/** A file under a final name must be complete: safetensors open and read fully, JSON parses, tokenizer copies match. */
function verifyFile(path: string, name: string, modelDir: string): void {
  if (name.endsWith('.safetensors')) {
    const f = SafetensorsFile.open(path);
    try {
      for (const t of f.tensors.keys()) f.read(t);
    } finally {
      f.close();
    }
  } else if (name.endsWith('.json') && !(TOKENIZER_FILES as readonly string[]).includes(name)) {
    JSON.parse(readFileSync(path, 'utf8'));
  } else if ((TOKENIZER_FILES as readonly string[]).includes(name)) {
    assert.deepEqual(readFileSync(path), readFileSync(join(modelDir, name)), `${path} is a complete copy`);
  } else {
    assert.fail(`unexpected file ${path}`);
  }
}

function verifyCheckpoint(dir: string, step: number, modelDir: string): void {
  const names = readdirSync(dir).sort();
  for (const n of ['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'trainer_state.json', 'rng_state.json', 'scheduler.json', 'training_args.json']) {
    assert.ok(names.includes(n), `${dir} has ${n}`);
  }
  for (const n of names) {
    assert.ok(!isTempName(n) && statSync(join(dir, n)).isFile(), `${dir}/${n} is a final file`);
    verifyFile(join(dir, n), n, modelDir);
  }
  assert.equal(loadTrainerState(join(dir, 'trainer_state.json')).globalStep, step);
  const opt = SafetensorsFile.open(join(dir, 'optimizer.safetensors'));
  assert.deepEqual([...opt.tensors.keys()].sort(), ['m', 'v', 'values']);
  opt.close();
  PeftModel.fromPretrained(AutoModelForCausalLM.fromPretrained(modelDir), dir);
}

/** The names in `out`; none when a kill came before the run created it. */
function namesIn(out: string): string[] {
  return existsSync(out) ? readdirSync(out).sort() : [];
}

/** Checks the output directory after a kill; returns the temp names found and the checkpoint steps. */
function verifyOutput(out: string, modelDir: string): { temps: string[]; steps: number[] } {
  const temps: string[] = [];
  const steps: number[] = [];
  for (const name of namesIn(out)) {
    const path = join(out, name);
    const m = /^checkpoint-(\d+)$/.exec(name);
    if (isTempName(name)) temps.push(name);
    else if (m !== null) {
      verifyCheckpoint(path, Number(m[1]), modelDir);
      steps.push(Number(m[1]));
    } else verifyFile(path, name, modelDir);
  }
  return { temps, steps: steps.sort((a, b) => a - b) };
}

test(`SIGKILL at ${TRIALS} seeded random moments: checkpoints load, no partial files, resume equals an uninterrupted run`, async (t) => {
  const modelDir = fixture(t, 'hf_models', 'stories260K-hf');
  const text = fixture(t, 'datasets', 'tinyshakespeare.txt');
  if (modelDir === undefined || text === undefined) return;
  const root = mkdtempSync(join(tmpdir(), 'ftune-kill-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const common = ['train', '--model', modelDir, '--data', shakespeareJsonl(text, 0, 32), '--method', 'lora', '--lora-dropout', '0.1', '--max-steps', '16',
    '--batch-size', '2', '--lr', '1e-3', '--max-length', '32', '--save-steps', '2', '--save-total-limit', '2', '--scheduler', 'cosine', '--seed', '7'];
  const whole = await run([...common, '--output', join(root, 'whole')]);
  assert.equal(whole.code, 0, whole.stderr);
  const reference = readFileSync(join(root, 'whole', 'adapter_model.safetensors'));
  const rng = new Rng(SEED);
  const stats = { killed: 0, finishedFirst: 0, tempsLeft: 0, noCheckpoint: 0, resumedFrom: [] as number[], filesChecked: 0 };
  for (let trial = 0; trial < TRIALS; trial++) {
    const out = join(root, `trial-${trial}`);
    // Anywhere in the reference run's training phase, which ends with the final save and exit.
    const delay = rng.next() * whole.trainMs;
    const k = await run([...common, '--output', out], delay);
    if (k.signal === 'SIGKILL') stats.killed++;
    else {
      assert.equal(k.code, 0, k.stderr);
      stats.finishedFirst++;
    }
    const after = verifyOutput(out, modelDir);
    stats.filesChecked += namesIn(out).length;
    if (after.temps.length > 0) stats.tempsLeft++;
    const last = after.steps.at(-1);
    if (last === undefined) stats.noCheckpoint++;
    else stats.resumedFrom.push(last);
    const resumed = await run([...common, '--output', out, ...(last === undefined ? [] : ['--resume-from-checkpoint', 'latest'])]);
    assert.equal(resumed.code, 0, `trial ${trial} (kill at ${delay.toFixed(0)} ms): ${resumed.stderr}`);
    assert.deepEqual(readFileSync(join(out, 'adapter_model.safetensors')), reference, `trial ${trial}: resumed adapter equals the uninterrupted run's`);
    assert.deepEqual(readdirSync(out).filter(isTempName), [], `trial ${trial}: temp names cleaned up`);
    verifyOutput(out, modelDir);
    rmSync(out, { recursive: true, force: true });
  }
  t.diagnostic(`kill trials: ${TRIALS} (seed ${SEED}), killed mid-run ${stats.killed}, finished before the kill ${stats.finishedFirst}, `
    + `temp names left by the kill ${stats.tempsLeft}, no checkpoint yet ${stats.noCheckpoint}, resumed from steps [${stats.resumedFrom.join(',')}], `
    + `entries checked ${stats.filesChecked}, partial files 0, resumed runs equal to the uninterrupted run ${TRIALS}/${TRIALS}`);
});
