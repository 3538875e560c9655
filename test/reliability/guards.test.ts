// Training guards: a NaN in the weights, the gradients or the loss stops training with a
// NumericalError naming the step and the first non-finite tensor, before any update or
// checkpoint uses it (the last good checkpoint stays byte-identical); the memory guard
// refuses, with suggestions, a run predicted not to fit (injected numbers); `ftune train`
// refuses an --output that already holds a model.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, NumericalError } from '../../src/errors.js';
import { AutoModelForCausalLM } from '../../src/models/auto.js';
import { Tensor } from '../../src/tensor/tensor.js';
import type { FTensor } from '../../src/backend/backend.js';
import { AutoTokenizer } from '../../src/tokenizer/tokenizer.js';
import { FlatParams } from '../../src/train/params.js';
import {
  availableMemory, cgroupHeadroom, checkMemory, checkOutputDir, checkStepFinite, checkWeightsFinite, firstNonFinite, parseMemAvailable,
} from '../../src/train/guards.js';
import { Trainer, type TrainableModel } from '../../src/train/trainer.js';
import type { TrainerCallback } from '../../src/train/callbacks.js';
import { fixture } from '../helpers/data.js';
import { shakespeare, shakespeareJsonl } from '../helpers/train.js';

const CLI = resolve('dist/src/cli/main.js');
const GIB = 2 ** 30;

function flat(): FlatParams {
  return new FlatParams([['a.weight', Tensor.zeros([2, 3], 'f32')], ['b.weight', Tensor.zeros([4], 'f32')], ['c.bias', Tensor.zeros([2], 'f32')]]);
}

/** Every file under dir (relative path -> bytes). */
function snapshot(dir: string, prefix = ''): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) for (const [k, v] of snapshot(p, `${prefix}${name}/`)) out.set(k, v);
    else out.set(`${prefix}${name}`, readFileSync(p));
  }
  return out;
}

test('firstNonFinite and checkStepFinite name the step and the first non-finite tensor', () => {
  const p = flat();
  assert.equal(firstNonFinite(p, 'grads'), undefined);
  checkStepFinite(1, 2.5, 0.3, p);
  const b = p.tensors[1];
  const c = p.tensors[2];
  assert.ok(b !== undefined && c !== undefined);
  p.gradOf(c).data[1] = Infinity;
  p.gradOf(b).data[3] = NaN;
  assert.deepEqual(firstNonFinite(p, 'grads'), { name: 'b.weight', index: 3, value: NaN });
  assert.throws(() => checkStepFinite(7, 2.5, NaN, p), (e: unknown) => e instanceof NumericalError && e.step === 7 && e.tensor === 'b.weight'
    && /training step 7: loss 2\.5, gradient norm NaN; every weight is finite; first non-finite gradient: b\.weight\[3\] = NaN/.test(e.message) && /hint: lower --lr/.test(e.message));
  p.zeroGrad();
  assert.throws(() => checkStepFinite(2, Infinity, 0.1, p), (e: unknown) => e instanceof NumericalError && e.tensor === 'loss');
  checkWeightsFinite(3, p);
  b.data[0] = -Infinity;
  assert.throws(() => checkWeightsFinite(3, p), (e: unknown) => e instanceof NumericalError && e.tensor === 'b.weight' && /b\.weight\[0\] = -Infinity; nothing was saved/.test(e.message));
});

test('memory guard: fits, refuses with suggestions, or starts anyway with force (injected numbers)', () => {
  assert.deepEqual(checkMemory(3 * GIB, { force: false, available: 4 * GIB }), { predicted: 3 * GIB, available: 4 * GIB, source: 'given', fits: true });
  assert.throws(() => checkMemory(10 * GIB, { force: false, available: 4 * GIB }), (e: unknown) => e instanceof ConfigError
    && /needs about 10\.00 GiB at its peak but only 4\.00 GiB is available/.test(e.message)
    && ['--method qlora', '--batch-size', '--grad-accum', '--gradient-checkpointing', '--max-length', '--force'].every((s) => e.message.includes(s)));
  assert.equal(checkMemory(10 * GIB, { force: true, available: 4 * GIB }).fits, false);
  const live = availableMemory();
  assert.ok(Number.isFinite(live.bytes) && live.bytes > 0, `${live.bytes} from ${live.source}`);
});

test('memory sources: MemAvailable and cgroup headroom parse as the kernel writes them', () => {
  assert.equal(parseMemAvailable('MemTotal:       16316412 kB\nMemFree:         1000 kB\nMemAvailable:   12000000 kB\n'), 12000000 * 1024);
  assert.equal(parseMemAvailable('MemTotal: 1 kB\n'), undefined);
  assert.equal(cgroupHeadroom('max\n', '123\n'), undefined);
  assert.equal(cgroupHeadroom('8589934592\n', '1073741824\n'), 7 * GIB);
  assert.equal(cgroupHeadroom('1000\n', '5000\n'), 0);
  assert.equal(cgroupHeadroom(undefined, undefined), undefined);
});

interface Run {
  out: string;
  error: unknown;
  atSave: Map<string, Map<string, Buffer>>;
}

/** Trains 4 steps (checkpoints every 2) with `poison` run at the end of step `at`; returns the error and checkpoint snapshots. */
function poisonedRun(t: import('node:test').TestContext, wrap: (m: TrainableModel) => TrainableModel, poison: (m: TrainableModel) => void, at: number): Run | undefined {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  const text = fixture(t, 'datasets', 'tinyshakespeare.txt');
  if (dir === undefined || text === undefined) return undefined;
  const tok = AutoTokenizer.fromPretrainedSync(dir);
  const out = mkdtempSync(join(tmpdir(), 'ftune-guard-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const model = wrap(AutoModelForCausalLM.fromPretrained(dir));
  const atSave = new Map<string, Map<string, Buffer>>();
  const cb: TrainerCallback = {
    onStepEnd: (s) => { if (s.globalStep === at) poison(model); },
    onSave: (_s, d) => void atSave.set(d, snapshot(d)),
  };
  let error: unknown;
  try {
    new Trainer({ model, args: { outputDir: out, maxSteps: 4, perDeviceTrainBatchSize: 4, learningRate: 2e-3, saveSteps: 2, loggingSteps: 1, seed: 3 }, trainDataset: shakespeare(text, tok, 0, 32), callbacks: [cb] }).train();
  } catch (e) {
    error = e;
  }
  return { out, error, atSave };
}

function assertCheckpointsUntouched(run: Run): void {
  assert.deepEqual(readdirSync(run.out), ['checkpoint-2'], 'only the last good checkpoint, no temp files');
  const saved = run.atSave.get(join(run.out, 'checkpoint-2'));
  assert.ok(saved !== undefined && saved.size >= 6);
  assert.deepEqual(snapshot(join(run.out, 'checkpoint-2')), saved);
}

const POISONED = 'model.layers.2.mlp.down_proj.weight';
function poisonWeight(m: TrainableModel): void {
  const p = m.trainableParameters().find(([n]) => n === POISONED)?.[1];
  assert.ok(p !== undefined);
  p.data[5] = NaN;
}

test('a NaN weight after step 3: step 4 stops with a NumericalError naming it; checkpoint-2 untouched', (t) => {
  const run = poisonedRun(t, (m) => m, poisonWeight, 3);
  if (run === undefined) return;
  assert.ok(run.error instanceof NumericalError, String(run.error));
  assert.equal(run.error.step, 4);
  assert.equal(run.error.tensor, POISONED);
  assert.match(run.error.message, /training step 4: loss NaN, gradient norm NaN; first non-finite weight: model\.layers\.2\.mlp\.down_proj\.weight\[5\] = NaN/);
  assertCheckpointsUntouched(run);
});

test('a NaN weight at a save step: the checkpoint is not written', (t) => {
  const run = poisonedRun(t, (m) => m, poisonWeight, 4);
  if (run === undefined) return;
  assert.ok(run.error instanceof NumericalError && run.error.step === 4 && run.error.tensor === POISONED, String(run.error));
  assert.match(run.error.message, /after training step 4: parameter model\.layers\.2\.mlp\.down_proj\.weight\[5\] = NaN; nothing was saved/);
  assertCheckpointsUntouched(run);
});

test('non-finite gradients with a finite loss: the first parameter in the flat buffer is named', (t) => {
  let poisoned = false;
  // Gradients reach the flat gradient buffer through backend.addScaledInPlace (FlatParams.accumulate);
  // this backend turns one accumulated gradient value into +Infinity once poisoned. The flat
  // gradient buffer is recognised as the one the size of the flat values buffer that is not it.
  const wrap = (m: TrainableModel): TrainableModel => {
    const backend = {
      ...m.backend,
      addScaledInPlace: (y: FTensor, x: FTensor, s: number): void => {
        m.backend.addScaledInPlace(y, x, s);
        const values = m.trainableParameters()[0]?.[1].data.buffer;
        // The first element of the whole buffer: the first parameter's gradient (linear
        // weights accumulate in place, so the first sink-added gradient may be another's).
        if (poisoned && values !== undefined && y.data.buffer !== values && y.data.buffer.byteLength === values.byteLength) new Float32Array(y.data.buffer, 0, 1)[0] = Infinity;
      },
    };
    return { backend, trainableParameters: () => m.trainableParameters(), savePretrained: (d) => m.savePretrained(d), loss: (...a) => m.loss(...a) };
  };
  const run = poisonedRun(t, wrap, () => { poisoned = true; }, 3);
  if (run === undefined) return;
  const first = new FlatParams(AutoModelForCausalLM.fromPretrained(fixture(t, 'hf_models', 'stories260K-hf') ?? '').trainableParameters()).names[0];
  assert.ok(run.error instanceof NumericalError && run.error.step === 4 && run.error.tensor === first, String(run.error));
  assert.match(run.error.message, /loss \d+\.\d+, gradient norm Infinity; every weight is finite; first non-finite gradient: /);
  assertCheckpointsUntouched(run);
});

function ftune(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('ftune train refuses a run predicted not to fit, and an --output that holds a model', (t) => {
  const model = fixture(t, 'hf_models', 'stories260K-hf');
  const text = fixture(t, 'datasets', 'tinyshakespeare.txt');
  if (model === undefined || text === undefined) return;
  const root = mkdtempSync(join(tmpdir(), 'ftune-guard-cli-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const data = shakespeareJsonl(text, 0, 8);
  const huge = ftune(['train', '--model', model, '--data', data, '--batch-size', '100000', '--max-length', '8192', '--output', join(root, 'huge')]);
  assert.equal(huge.code, 1);
  assert.match(huge.stderr, /error: this run needs about \d+\.\d+ GiB at its peak but only \d+\.\d+ GiB is available[^]*hint: lower the peak: --method qlora[^]*--force/);

  const existing = join(root, 'existing');
  mkdirSync(existing);
  writeFileSync(join(existing, 'adapter_config.json'), '{"mine": true}\n');
  const r = ftune(['train', '--model', model, '--data', data, '--max-steps', '1', '--output', existing]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--output .* already holds a model, adapter or checkpoints \(adapter_config\.json\)[^]*hint: choose a new --output directory/);
  assert.equal(readFileSync(join(existing, 'adapter_config.json'), 'utf8'), '{"mine": true}\n');
  assert.throws(() => checkOutputDir(existing, { resuming: false }), ConfigError);
  checkOutputDir(existing, { resuming: true });
  checkOutputDir(join(root, 'new'), { resuming: false });
});

test('ftune train with an absurd learning rate stops with a numerical diagnostic and saves no final adapter', (t) => {
  const model = fixture(t, 'hf_models', 'stories260K-hf');
  const text = fixture(t, 'datasets', 'tinyshakespeare.txt');
  if (model === undefined || text === undefined) return;
  const root = mkdtempSync(join(tmpdir(), 'ftune-guard-lr-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const out = join(root, 'out');
  const r = ftune(['train', '--model', model, '--data', shakespeareJsonl(text, 0, 16), '--method', 'full', '--optim', 'sgd', '--max-grad-norm', '0', '--lr', '1e30',
    '--max-steps', '8', '--max-length', '32', '--save-steps', '1', '--output', out]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /error: (after )?training step \d+: [^]*hint: lower --lr/);
  assert.ok(!readdirSync(out).includes('model.safetensors'), 'no final model');
});
