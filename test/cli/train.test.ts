// ftune train / eval / merge / generate --adapter end to end on stories260K-hf, as a
// user runs them: the adapter lowers the held-out loss, merging changes no greedy
// token, and a run killed with SIGKILL resumes to the same adapter bytes.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from '../helpers/data.js';
import { shakespeareJsonl } from '../helpers/train.js';

const CLI = resolve('dist/src/cli/main.js');

function ftune(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function json(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout) as Record<string, unknown>;
}

test('train lora -> eval -> merge -> generate: lower loss, same greedy text merged or not', (t) => {
  const model = fixture(t, 'hf_models', 'stories260K-hf');
  const text = fixture(t, 'datasets', 'tinyshakespeare.txt');
  if (model === undefined || text === undefined) return;
  const root = mkdtempSync(join(tmpdir(), 'ftune-cli-train-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const data = shakespeareJsonl(text, 0, 96);
  const heldOut = shakespeareJsonl(text, 20000, 16);
  const out = join(root, 'adapter');
  const r = ftune(['train', '--model', model, '--data', data, '--eval-data', heldOut, '--method', 'lora', '--target-modules', 'all-linear', '--r', '8',
    '--max-steps', '30', '--lr', '5e-3', '--max-length', '64', '--output', out, '--seed', '1']);
  assert.equal(r.code, 0, r.stderr);
  const result = json(r.stdout);
  for (const key of ['train_loss', 'eval_loss', 'tokens_per_s', 'peak_rss_mib', 'trainable_params', 'total_params', 'output_dir']) assert.ok(key in result, key);
  assert.match(r.stderr, /trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: \d+\.\d{4}/);
  for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'tokenizer.json']) assert.ok(existsSync(join(out, f)), f);

  const base = json(ftune(['eval', '--model', model, '--data', heldOut, '--max-length', '64']).stdout);
  const tuned = json(ftune(['eval', '--model', model, '--adapter', out, '--data', heldOut, '--max-length', '64']).stdout);
  t.diagnostic(`held-out loss: base ${String(base['loss'])}, lora ${String(tuned['loss'])}`);
  assert.ok(Number(tuned['loss']) < Number(base['loss']) - 0.5, `base ${String(base['loss'])} vs lora ${String(tuned['loss'])}`);
  assert.ok(Math.abs(Number(tuned['loss']) - Number(result['eval_loss'])) < 1e-6, 'eval agrees with train\'s final eval');

  const merged = join(root, 'merged');
  assert.equal(ftune(['merge', '--model', model, '--adapter', out, '--output', merged]).code, 0);
  const gen = (args: string[]): string => ftune(['generate', ...args, '--prompt', 'ROMEO:', '--temperature', '0', '--max-new-tokens', '40']).stdout;
  const unmergedText = gen(['--model', model, '--adapter', out]);
  assert.equal(gen(['--model', merged]), unmergedText);
  assert.notEqual(gen(['--model', model]), unmergedText, 'the adapter changes the output');
});

test('train full: writes a model directory that loads and generates', (t) => {
  const model = fixture(t, 'hf_models', 'stories260K-hf');
  const text = fixture(t, 'datasets', 'tinyshakespeare.txt');
  if (model === undefined || text === undefined) return;
  const root = mkdtempSync(join(tmpdir(), 'ftune-cli-full-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const out = join(root, 'full');
  const r = ftune(['train', '--model', model, '--data', shakespeareJsonl(text, 0, 64), '--val-split', '0.25', '--method', 'full', '--max-steps', '12',
    '--lr', '3e-3', '--max-length', '64', '--output', out, '--save-steps', '6', '--save-total-limit', '1']);
  assert.equal(r.code, 0, r.stderr);
  const res = json(r.stdout);
  assert.equal(res['trainable_params'], res['total_params']);
  assert.deepEqual(readdirSync(out).filter((n) => n.startsWith('checkpoint-')), ['checkpoint-12']);
  for (const f of ['config.json', 'model.safetensors', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) assert.ok(existsSync(join(out, f)), f);
  const g = ftune(['generate', '--model', out, '--prompt', 'ROMEO:', '--temperature', '0', '--max-new-tokens', '20']);
  assert.equal(g.code, 0, g.stderr);
  assert.ok(g.stdout.startsWith('ROMEO:') && g.stdout.length > 'ROMEO:'.length);
});

test('a run killed with SIGKILL after a checkpoint resumes to the same adapter, byte for byte', async (t) => {
  const model = fixture(t, 'hf_models', 'stories260K-hf');
  const text = fixture(t, 'datasets', 'tinyshakespeare.txt');
  if (model === undefined || text === undefined) return;
  const root = mkdtempSync(join(tmpdir(), 'ftune-cli-kill-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const data = shakespeareJsonl(text, 0, 64);
  const common = ['train', '--model', model, '--data', data, '--method', 'lora', '--lora-dropout', '0.1', '--max-steps', '150', '--lr', '1e-3',
    '--max-length', '64', '--save-steps', '5', '--save-total-limit', '2', '--scheduler', 'cosine', '--warmup-steps', '10', '--seed', '7'];
  const whole = join(root, 'whole');
  const uninterrupted = ftune([...common, '--output', whole]);
  assert.equal(uninterrupted.code, 0, uninterrupted.stderr);

  const killed = join(root, 'killed');
  const child = spawn(process.execPath, [CLI, ...common, '--output', killed], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((done) => child.on('exit', (_code, signal) => done(signal)));
  while (!existsSync(join(killed, 'checkpoint-5'))) await new Promise((r) => setTimeout(r, 2));
  child.kill('SIGKILL');
  const signal = await exited;
  assert.equal(signal, 'SIGKILL', 'the run was killed before it finished');
  assert.ok(!existsSync(join(killed, 'adapter_model.safetensors')), 'no final adapter from the killed run');

  const resumed = ftune([...common, '--output', killed, '--resume-from-checkpoint', 'latest']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(readFileSync(join(killed, 'adapter_model.safetensors')), readFileSync(join(whole, 'adapter_model.safetensors')));
  assert.equal(json(resumed.stdout)['train_loss'], json(uninterrupted.stdout)['train_loss']);
});
