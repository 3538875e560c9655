// Gradients of a whole tiny Llama (Qwen2-style: q/k/v biases, GQA, untied head): the
// tape's analytic gradients against central differences in float64 on the reference
// backend, with and without activation checkpointing; the native backward against the
// reference on the same f32 weights; and the training tape (FlatParams.tape(): weight
// gradients accumulated in place) against the plain sink.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeBackend, refBackend, type Backend } from '../../src/backend/index.js';
import type { FTensor } from '../../src/backend/backend.js';
import { Ops } from '../../src/autograd/ops.js';
import { Tape } from '../../src/autograd/tape.js';
import { llamaConfigFromHf } from '../../src/models/llama/config.js';
import { LlamaForCausalLM, type WeightSource } from '../../src/models/llama/model.js';
import { scope } from '../../src/tensor/scope.js';
import { Tensor } from '../../src/tensor/tensor.js';
import type { FloatDType } from '../../src/tensor/dtype.js';
import { FlatParams } from '../../src/train/params.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { Rng } from '../helpers/random.js';

const CONFIG = llamaConfigFromHf({
  model_type: 'qwen2', vocab_size: 23, hidden_size: 16, intermediate_size: 20, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 32, rope_theta: 1e6, tie_word_embeddings: false,
});

function source(dtype: FloatDType, seed: number): WeightSource {
  const rng = new Rng(seed);
  return (_name, shape, role) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = rng.normals(n, role === 'norm' ? 0.1 : 0.3);
    return Tensor.from(shape, dtype, role === 'norm' ? v.map((x) => 1 + x) : v, 'weights');
  };
}

const IDS = Int32Array.from([1, 5, 9, 22, 3, 7, 0, 14, 2, 11]); // B=2, T=5
const LABELS = Int32Array.from([1, 5, -100, 22, 3, 7, 0, 14, 2, -100]);

/** Loss and every parameter's gradient (summed over contributions). */
function lossAndGrads(model: LlamaForCausalLM, backend: Backend, checkpoint: boolean): { loss: number; grads: Map<string, Float64Array> } {
  const grads = new Map<string, Float64Array>();
  const names = new Map(model.namedParameters().map(([n, t]) => [t, n]));
  const loss = scope(() => {
    const tape = new Tape();
    for (const [, t] of model.namedParameters()) tape.watch(t);
    const r = model.loss(new Ops(backend, { tape }), IDS, LABELS, 2, { checkpoint });
    tape.backward(backend, r.loss, Tensor.from([1], r.loss.dtype, [1]), (leaf, g: FTensor) => {
      const name = names.get(leaf) ?? '?';
      const acc = grads.get(name) ?? new Float64Array(g.size);
      g.data.forEach((v, i) => (acc[i] = (acc[i] ?? 0) + v));
      grads.set(name, acc);
    });
    return r.sum / r.count;
  });
  return { loss, grads };
}

for (const checkpoint of [false, true]) {
  test(`whole model: analytic gradients equal central differences in float64${checkpoint ? ' (checkpointed layers)' : ''}`, () => {
    const model = new LlamaForCausalLM(CONFIG, source('f64', 1), refBackend);
    const { grads } = lossAndGrads(model, refBackend, checkpoint);
    const params = model.namedParameters();
    assert.equal(grads.size, params.length, 'every parameter gets a gradient');
    const loss = (): number => scope(() => {
      const r = model.loss(new Ops(refBackend), IDS, LABELS, 2);
      return r.sum / r.count;
    });
    gradcheck({
      loss, rng: new Rng(9), samples: 6, rtol: 1e-5,
      inputs: params.map(([name, t]) => ({ name, t: t as Tensor<'f64'>, grad: grads.get(name) ?? new Float64Array(t.size) })),
    });
  });
}

test('whole model: native backward equals the reference on the same f32 weights', () => {
  const nat = new LlamaForCausalLM(CONFIG, source('f32', 4), nativeBackend);
  const ref = new LlamaForCausalLM(CONFIG, source('f32', 4), refBackend);
  const a = lossAndGrads(nat, nativeBackend, false);
  const b = lossAndGrads(ref, refBackend, false);
  assert.ok(Math.abs(a.loss - b.loss) < 1e-5, `loss ${a.loss} vs ${b.loss}`);
  for (const [name, gb] of b.grads) {
    const ga = a.grads.get(name);
    assert.ok(ga !== undefined, name);
    const scale = Math.max(...Array.from(gb, Math.abs), 1e-3);
    gb.forEach((v, i) => assert.ok(Math.abs((ga[i] ?? NaN) - v) <= 2e-4 * scale, `${name}[${i}]: native ${ga[i]} vs ref ${v}`));
  }
});

for (const [matmulDtype, checkpoint] of [['f32', false], ['bf16', false], ['bf16', true]] as const) {
  test(`training tape: in-place weight gradients equal the sink's (${matmulDtype}${checkpoint ? ', checkpointed' : ''})`, () => {
    const model = new LlamaForCausalLM(CONFIG, source('f32', 6), nativeBackend);
    const ops = (tape: Tape): Ops => new Ops(nativeBackend, { tape, matmulDtype });
    // Plain tape: every contribution reaches the sink and is summed there.
    const want = new Map<string, Float32Array>();
    const names = new Map(model.namedParameters().map(([n, t]) => [t, n]));
    // Two micro-batches, so the in-place path must accumulate, not overwrite.
    for (const ids of [IDS, IDS.map((id) => (id * 7 + 3) % 23)]) {
      scope(() => {
        const tape = new Tape();
        for (const [, t] of model.namedParameters()) tape.watch(t);
        const r = model.loss(ops(tape), ids, LABELS, 2, { checkpoint, gradScale: 1 });
        tape.backward(nativeBackend, r.loss, Tensor.from([1], 'f32', [1]), (leaf, g: FTensor) => {
          const name = names.get(leaf) ?? '?';
          const acc = want.get(name) ?? new Float32Array(g.size);
          g.data.forEach((v, i) => (acc[i] = (acc[i] ?? 0) + v));
          want.set(name, acc);
        });
      });
    }
    // Training tape: linear weights, the head (gradScale given) and the embedding accumulate
    // straight into the flat buffer.
    const params = new FlatParams(model.namedParameters());
    for (const ids of [IDS, IDS.map((id) => (id * 7 + 3) % 23)]) {
      scope(() => {
        const tape = params.tape();
        const r = model.loss(ops(tape), ids, LABELS, 2, { checkpoint, gradScale: 1 });
        tape.backward(nativeBackend, r.loss, Tensor.from([1], 'f32', [1]), (leaf, g: FTensor) => params.accumulate(nativeBackend, leaf, g));
      });
    }
    params.tensors.forEach((t, i) => {
      const name = params.names[i] ?? '?';
      const w = want.get(name);
      assert.ok(w !== undefined && w.some((v) => v !== 0), `${name}: no gradient to compare`);
      // Each element is the same products summed in the same order (one K slice here).
      assert.deepEqual(params.gradOf(t).data, w, name);
    });
  });
}
