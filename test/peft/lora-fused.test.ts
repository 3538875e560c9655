// The fused LoRA op inside a whole PEFT model: gradients with activation checkpointing
// equal those without (the recomputation draws the same dropout masks), and the fused
// model's loss and gradients match the unfused ops' within f32 rounding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ops } from '../../src/autograd/ops.js';
import { Tape } from '../../src/autograd/tape.js';
import { getPeftModel, type PeftModel } from '../../src/peft/index.js';
import { scope } from '../../src/tensor/scope.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { randomizeB, randomQwen2 } from './helpers.js';

/** Fused vs unfused: gradient sums of a tensor's consumers change order (f32 rounding). */
const RTOL = 1e-4;
const IDS = Int32Array.from([3, 17, 5, 60, 22, 9, 41, 2]);

function gradients(p: PeftModel, checkpoint: boolean): { loss: number; grads: Float32Array[] } {
  const params = p.trainableParameters();
  const grads = new Map<Tensor, Float32Array>();
  const loss = scope(() => {
    const tape = new Tape();
    for (const [, w] of params) tape.watch(w);
    const r = p.loss(new Ops(p.backend, { tape, dropoutSeed: 3 }), IDS, IDS, 2, { checkpoint });
    const value = r.loss.data[0] ?? NaN; // backward frees the loss tensor
    tape.backward(p.backend, r.loss, Tensor.from([1], 'f32', [1]), (leaf, g) => {
      const acc = grads.get(leaf) ?? new Float32Array(leaf.size);
      g.data.forEach((v, i) => (acc[i] = (acc[i] ?? 0) + v));
      grads.set(leaf, acc);
    });
    return value;
  });
  return { loss, grads: params.map(([, w]) => grads.get(w) ?? new Float32Array(0)) };
}

test('fused LoRA: checkpointed gradients equal plain ones; unfused ops agree within f32 rounding', () => {
  const model = randomQwen2(8);
  const p = getPeftModel(model, { r: 4, loraAlpha: 8, loraDropout: 0.1, targetModules: 'all-linear' }, 'default', { seed: 2 });
  randomizeB(p.loraLayers(), 'default', 1, 0.1);
  const fused = gradients(p, false);
  assert.deepEqual(gradients(p, true), fused, 'checkpointing changes nothing');
  for (const [, l] of p.loraLayers()) l.fuse = false;
  const plain = gradients(p, false);
  assert.ok(Math.abs(fused.loss - plain.loss) <= 1e-6 * Math.abs(plain.loss), `loss ${fused.loss} vs ${plain.loss}`);
  plain.grads.forEach((want, i) => {
    const got = fused.grads[i] ?? new Float32Array(0);
    const scale = Math.max(...Array.from(want, Math.abs));
    assert.ok(scale > 0, `parameter ${i}: zero gradient`);
    want.forEach((v, j) => assert.ok(Math.abs((got[j] ?? NaN) - v) <= RTOL * scale, `parameter ${i}[${j}]: fused ${got[j]} vs ${v}`));
  });
});
