// QLoRA end to end on stories260K-hf: 4-bit loading (peak memory near the 4-bit size),
// bitsandbytes files that reload to identical codes, QLoRA training that lands within 5%
// of LoRA's eval loss, adapters that load onto the dense base, and merging.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AutoModelForCausalLM } from '../../src/models/auto.js';
import type { LlamaForCausalLM } from '../../src/models/llama/model.js';
import { Linear4bit } from '../../src/nn/linear4bit.js';
import { getPeftModel, PeftModel } from '../../src/peft/index.js';
import { BitsAndBytesConfig, QLORA_PRESET } from '../../src/quant/config.js';
import { memoryStats, resetPeak } from '../../src/tensor/memory.js';
import { scope } from '../../src/tensor/scope.js';
import { AutoTokenizer } from '../../src/tokenizer/tokenizer.js';
import { Trainer } from '../../src/train/trainer.js';
import { fixture } from '../helpers/data.js';
import { shakespeare } from '../helpers/train.js';

const CLI = resolve('dist/src/cli/main.js');
const PROMPT = [1, 403, 407, 261, 378];

function lastLogits(model: LlamaForCausalLM | PeftModel): Float32Array {
  const cache = model.newCache(1, PROMPT.length);
  const out = scope(() => Float32Array.from(model.forward(Int32Array.from(PROMPT), 1, cache, 'last').data));
  cache.release();
  return out;
}

function layers4bit(model: LlamaForCausalLM): Linear4bit[] {
  return model.namedModules().flatMap(([, m]) => (m instanceof Linear4bit ? [m] : []));
}

test('4-bit loading: every decoder linear quantized, embeddings and norms dense, memory near the 4-bit size', (t) => {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  if (dir === undefined) return;
  const before = memoryStats().totalCurrent;
  resetPeak();
  const q = AutoModelForCausalLM.fromPretrained(dir, { quantizationConfig: QLORA_PRESET });
  const peak = memoryStats().totalPeak - before;
  const resident = memoryStats().totalCurrent - before;
  const layers = layers4bit(q);
  assert.equal(layers.length, 5 * 7);
  const weights = layers.reduce((n, l) => n + l.weightCount, 0);
  const bytes = layers.reduce((n, l) => n + l.weightBytes, 0);
  assert.ok(bytes <= 0.145 * 4 * weights, `4-bit bytes ${bytes} for ${weights} weights`);
  const largest = Math.max(...layers.map((l) => l.weightCount)) * 4;
  assert.ok(peak <= resident + 2 * largest, `load peak ${peak} vs resident ${resident} + 2 x largest tensor ${largest}`);
  const dense = AutoModelForCausalLM.fromPretrained(dir);
  const a = lastLogits(q);
  const b = lastLogits(dense);
  const argmax = (x: Float32Array): number => x.indexOf(Math.max(...x));
  assert.equal(argmax(a), argmax(b), 'NF4 keeps the top token');
  let num = 0, da = 0, db = 0;
  a.forEach((v, i) => { num += v * (b[i] ?? 0); da += v * v; db += (b[i] ?? 0) ** 2; });
  assert.ok(num / Math.sqrt(da * db) > 0.99, 'logits stay close to the dense model');
});

test('ftune quantize writes bitsandbytes files that reload to identical codes and outputs', (t) => {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  if (dir === undefined) return;
  const root = mkdtempSync(join(tmpdir(), 'ftune-quantize-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const dq of [false, true]) {
    const out = join(root, dq ? 'nf4-dq' : 'nf4');
    const args: string[] = ['quantize', '--model', dir, '--output', out, ...(dq ? ['--double-quant'] : [])];
    const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    assert.equal(config['quantization_config']?.['quant_method'], 'bitsandbytes');
    assert.equal(config['quantization_config']?.['bnb_4bit_use_double_quant'], dq);
    const inMemory = AutoModelForCausalLM.fromPretrained(dir, { quantizationConfig: BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: dq, bnb4bitComputeDtype: 'bfloat16' }) });
    const reloaded = AutoModelForCausalLM.fromPretrained(out);
    const [x, y] = [layers4bit(inMemory), layers4bit(reloaded)];
    assert.equal(y.length, x.length);
    x.forEach((l, i) => {
      const m = y[i];
      assert.ok(m !== undefined);
      assert.deepEqual(m.quant.codes.data, l.quant.codes.data);
      if (dq) assert.deepEqual(m.quant.nested?.codes.data, l.quant.nested?.codes.data);
      else assert.deepEqual(m.quant.absmax?.data, l.quant.absmax?.data);
    });
    assert.deepEqual(lastLogits(reloaded), lastLogits(inMemory));
    const g = spawnSync(process.execPath, [CLI, 'generate', '--model', out, '--prompt', 'Once upon a time', '--temperature', '0', '--max-new-tokens', '10'], { encoding: 'utf8' });
    assert.equal(g.status, 0, g.stderr);
    assert.ok(g.stdout.startsWith('Once upon a time'));
  }
});

test('QLoRA reaches an eval loss within 5% of LoRA (same r, targets, steps, seed); its adapter loads on the dense base', (t) => {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  const text = fixture(t, 'datasets', 'tinyshakespeare.txt');
  if (dir === undefined || text === undefined) return;
  const tok = AutoTokenizer.fromPretrainedSync(dir);
  const train = shakespeare(text, tok, 0, 96);
  const heldOut = shakespeare(text, tok, 20000, 16);
  const out = mkdtempSync(join(tmpdir(), 'ftune-qlora-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const run = (quantized: boolean): { loss: number; peft: PeftModel } => {
    const base = AutoModelForCausalLM.fromPretrained(dir, quantized ? { quantizationConfig: QLORA_PRESET } : {});
    const peft = getPeftModel(base, { r: 8, loraAlpha: 16, targetModules: 'all-linear' }, 'default', { seed: 3 });
    const trainer = new Trainer({ model: peft, args: { outputDir: out, maxSteps: 30, perDeviceTrainBatchSize: 4, learningRate: 5e-3, saveStrategy: 'no', seed: 3, gradientCheckpointing: quantized }, trainDataset: train, evalDataset: heldOut, tokenizer: tok });
    trainer.train();
    return { loss: trainer.evaluate()['eval_loss'] ?? NaN, peft };
  };
  const lora = run(false);
  const qlora = run(true);
  t.diagnostic(`held-out loss: LoRA ${lora.loss.toFixed(4)}, QLoRA ${qlora.loss.toFixed(4)} (${(((qlora.loss - lora.loss) / lora.loss) * 100).toFixed(2)}%)`);
  assert.ok(Math.abs(qlora.loss - lora.loss) <= 0.05 * lora.loss, `LoRA ${lora.loss} vs QLoRA ${qlora.loss}`);
  const adapter = join(out, 'qlora-adapter');
  qlora.peft.savePretrained(adapter);
  const onDense = PeftModel.fromPretrained(AutoModelForCausalLM.fromPretrained(dir), adapter);
  assert.ok(existsSync(join(adapter, 'adapter_model.safetensors')));
  const denseLogits = lastLogits(onDense);
  const quantLogits = lastLogits(qlora.peft);
  let worst = 0;
  denseLogits.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - (quantLogits[i] ?? NaN)))));
  assert.ok(worst < 2, `the adapter on the dense base behaves like on the 4-bit base (max logit difference ${worst})`);
});

test('ftune merge on a 4-bit base: dequantizes by default, --requantize keeps 4 bits with a warning', (t) => {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  if (dir === undefined) return;
  const root = mkdtempSync(join(tmpdir(), 'ftune-qmerge-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const q4 = join(root, 'q4');
  // f32 compute, so the unmerged 4-bit model and the dequantized merge differ only by the merge's rounding.
  assert.equal(spawnSync(process.execPath, [CLI, 'quantize', '--model', dir, '--output', q4, '--compute-dtype', 'float32']).status, 0);
  const peft = getPeftModel(AutoModelForCausalLM.fromPretrained(q4), { r: 4, targetModules: ['q_proj', 'v_proj'], initLoraWeights: 'gaussian' }, 'default', { seed: 1 });
  for (const [, l] of peft.loraLayers()) l.lora_B['default']?.weight.data.fill(0.01);
  const adapter = join(root, 'adapter');
  peft.savePretrained(adapter);
  const expected = lastLogits(peft);
  const dense = join(root, 'merged');
  const r = spawnSync(process.execPath, [CLI, 'merge', '--model', q4, '--adapter', adapter, '--output', dense], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /dequantized 35 4-bit layers/);
  const merged = AutoModelForCausalLM.fromPretrained(dense);
  assert.equal(layers4bit(merged).length, 0);
  let worst = 0;
  lastLogits(merged).forEach((v, i) => (worst = Math.max(worst, Math.abs(v - (expected[i] ?? NaN)))));
  assert.ok(worst < 1e-3, `dequantized merge equals the unmerged QLoRA model (max logit difference ${worst})`);
  const requant = join(root, 'requant');
  const rq = spawnSync(process.execPath, [CLI, 'merge', '--model', q4, '--adapter', adapter, '--output', requant, '--requantize'], { encoding: 'utf8' });
  assert.equal(rq.status, 0, rq.stderr);
  assert.match(rq.stderr, /warning: --requantize rounds/);
  assert.equal(layers4bit(AutoModelForCausalLM.fromPretrained(requant)).length, 35);
});
