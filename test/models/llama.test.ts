// The Llama decoder against a reference nobody here wrote: stories260K's llama2.c
// greedy goldens, and the native backend against the TypeScript reference on a random
// Qwen2-style model (q/k/v biases, 4:1 GQA, untied head, rope_theta 1e6).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeBackend, refBackend } from '../../src/backend/index.js';
import { AutoModelForCausalLM } from '../../src/models/auto.js';
import { llamaConfigFromHf, ropeInvFreq } from '../../src/models/llama/config.js';
import { LlamaForCausalLM, type WeightSource } from '../../src/models/llama/model.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { scope } from '../../src/tensor/scope.js';
import { fixture } from '../helpers/data.js';
import { assertGoldens, loadGolden } from '../helpers/golden.js';
import { Rng } from '../helpers/random.js';

test('stories260K-hf: greedy generation reproduces every llama2.c golden', async (t) => {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  const goldenPath = fixture(t, 'llama2c', 'golden.json');
  if (dir === undefined || goldenPath === undefined) return;
  await assertGoldens(dir, loadGolden(goldenPath));
});

test('stories260K-hf: first-step logits match the float64 reference within 1e-3', (t) => {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  const goldenPath = fixture(t, 'llama2c', 'golden.json');
  if (dir === undefined || goldenPath === undefined) return;
  const ref = loadGolden(goldenPath).first_step_logits;
  for (const backend of [nativeBackend, refBackend]) {
    const model = AutoModelForCausalLM.fromPretrained(dir, { backend });
    const cache = model.newCache(1, 1);
    const logits = scope(() => Array.from(model.forward(Int32Array.of(1), 1, cache, 'last').data));
    cache.release();
    const top = logits.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 10);
    assert.deepEqual(top.map(([, i]) => i), ref.top10_token_ids, `${backend.name}: top-10 ids`);
    top.forEach(([v], i) => assert.ok(Math.abs(v - (ref.top10_logits[i] ?? NaN)) < 1e-3, `${backend.name}: logit ${i}: ${v}`));
    assert.ok(Math.abs(logits.reduce((a, b) => a + b, 0) - ref.logits_sum) < 1e-2, `${backend.name}: logits sum`);
  }
});

test('stories260K-hf in bf16 stays close to f32 (same top token, logits within 3%)', (t) => {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  if (dir === undefined) return;
  const ids = Int32Array.of(1, 403, 407, 261, 378);
  const run = (dtype: 'f32' | 'bf16'): number[] => {
    const model = AutoModelForCausalLM.fromPretrained(dir, { dtype });
    const cache = model.newCache(1, ids.length);
    const out = scope(() => Array.from(model.forward(ids, 1, cache, 'last').data));
    cache.release();
    return out;
  };
  const f32 = run('f32');
  const bf16 = run('bf16');
  const argmax = (a: number[]): number => a.indexOf(Math.max(...a));
  assert.equal(argmax(bf16), argmax(f32));
  const scale = Math.max(...f32.map(Math.abs));
  f32.forEach((v, i) => assert.ok(Math.abs(v - (bf16[i] ?? NaN)) < 0.03 * scale, `logit ${i}: ${v} vs ${bf16[i]}`));
});

const QWEN2_CONFIG = {
  model_type: 'qwen2', vocab_size: 97, hidden_size: 48, intermediate_size: 72, num_hidden_layers: 2,
  num_attention_heads: 8, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-6,
  rope_theta: 1000000.0, tie_word_embeddings: false, hidden_act: 'silu', bos_token_id: 0, eos_token_id: 1,
};

/** Random weights for every tensor the config implies, shared by both backends. */
function randomSource(seed: number): WeightSource {
  const rng = new Rng(seed);
  const made = new Map<string, Tensor>();
  return (name, shape, role) => {
    const existing = made.get(name);
    if (existing !== undefined) return existing;
    const n = shape.reduce((a, b) => a * b, 1);
    const values = role === 'norm' ? rng.normals(n, 0.1).map((v) => 1 + v) : rng.normals(n, role === 'bias' ? 0.1 : 0.2);
    const t = Tensor.from(shape, 'f32', values, 'weights');
    made.set(name, t);
    return t;
  };
}

test('random Qwen2-style model: native logits equal the reference backend (prefill and cached decode)', () => {
  const cfg = llamaConfigFromHf(QWEN2_CONFIG);
  assert.equal(cfg.qkvBias, true);
  assert.equal(cfg.oBias, false);
  assert.equal(cfg.headDim, 6);
  const source = randomSource(7);
  const native = new LlamaForCausalLM(cfg, source, nativeBackend);
  const ref = new LlamaForCausalLM(cfg, source, refBackend);
  assert.ok(native.namedParameters().some(([n]) => n === 'model.layers.1.self_attn.k_proj.bias'));
  assert.ok(native.namedParameters().some(([n]) => n === 'lm_head.weight'));
  const prompt = Int32Array.from([5, 17, 3, 96, 44, 0, 12]);
  const tol = 2e-4; // f32 accumulation vs float64 reference, logits of magnitude ~1-5
  const caches = [native.newCache(1, 10), ref.newCache(1, 10)];
  const steps: Int32Array[] = [prompt, Int32Array.of(9), Int32Array.of(60)];
  for (const ids of steps) {
    scope(() => {
      const [a, b] = [native.forward(ids, 1, caches[0]!, 'all'), ref.forward(ids, 1, caches[1]!, 'all')];
      assert.deepEqual(a.shape, [ids.length, 97]);
      let worst = 0;
      a.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - (b.data[i] ?? NaN)))));
      assert.ok(worst < tol, `max |native - ref| = ${worst}`);
    });
  }
  caches.forEach((c) => c.release());
});

test('cached decoding equals a full forward over the whole sequence', () => {
  const cfg = llamaConfigFromHf(QWEN2_CONFIG);
  const model = new LlamaForCausalLM(cfg, randomSource(11), nativeBackend);
  const seq = Int32Array.from([3, 1, 4, 1, 5, 9, 2, 6]);
  const full = model.newCache(1, seq.length);
  const whole = scope(() => Array.from(model.forward(seq, 1, full, 'all').data));
  const inc = model.newCache(1, seq.length);
  scope(() => model.forward(seq.subarray(0, 5), 1, inc, 'all'));
  for (let i = 5; i < seq.length; i++) {
    const row = scope(() => Array.from(model.forward(seq.subarray(i, i + 1), 1, inc, 'last').data));
    const expected = whole.slice(i * 97, (i + 1) * 97);
    row.forEach((v, j) => assert.ok(Math.abs(v - (expected[j] ?? NaN)) < 1e-4, `position ${i} logit ${j}`));
  }
  full.release();
  inc.release();
});

test('config: llama3 rope scaling and v5 rope_parameters are read; bad fields name themselves', () => {
  const llama3 = llamaConfigFromHf({
    model_type: 'llama', vocab_size: 10, hidden_size: 64, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2,
    rope_theta: 500000, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  });
  const inv = ropeInvFreq(llama3);
  // Highest frequency (wavelen < 8192/4) is untouched; the lowest (wavelen > 8192) is divided by 8.
  assert.ok(Math.abs((inv[0] ?? 0) - 1) < 1e-7);
  const plain = 1 / Math.pow(500000, 30 / 32);
  assert.ok(Math.abs((inv[15] ?? 0) - plain / 8) < 1e-6 * plain);
  const v5 = llamaConfigFromHf({ ...QWEN2_CONFIG, rope_theta: undefined, rope_parameters: { rope_type: 'default', rope_theta: 12345 } });
  assert.equal(v5.ropeTheta, 12345);
  assert.throws(() => llamaConfigFromHf({ ...QWEN2_CONFIG, hidden_size: 'big' }), /field "hidden_size" must be a number/);
  assert.throws(() => llamaConfigFromHf({ ...QWEN2_CONFIG, model_type: 'gpt2' }), /model_type "gpt2" is not supported/);
  assert.throws(() => llamaConfigFromHf({ ...QWEN2_CONFIG, num_key_value_heads: 3 }), /not a multiple of num_key_value_heads/);
});
