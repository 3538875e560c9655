// LoRA training path: gradients of the loss with respect to lora_A / lora_B through the
// tape match central finite differences. Needs the backward ops (GradOps) in the
// backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ops } from '../../src/autograd/ops.js';
import { Tape } from '../../src/autograd/tape.js';
import { getPeftModel } from '../../src/peft/index.js';
import { scope } from '../../src/tensor/scope.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { randomizeB, randomQwen2 } from './helpers.js';

/** Central differences with EPS on an f32 loss near ln(97): rounding ~3e-5, curvature ~1e-4. */
const EPS = 1e-2;
const ABS_TOL = 1e-3;
const REL_TOL = 2e-2;

for (const dropout of [0, 0.25]) test(`lora_A / lora_B gradients match finite differences of the loss (loraDropout ${dropout})`, () => {
  const model = randomQwen2(8);
  const p = getPeftModel(model, { r: 4, loraAlpha: 8, loraDropout: dropout, targetModules: ['q_proj', 'down_proj'] }, 'default', { seed: 2 });
  randomizeB(p.loraLayers(), 'default', 1, 0.1);
  const ids = Int32Array.from([3, 17, 5, 60, 22, 9, 41, 2]);
  if (dropout > 0) {
    const eval0 = scope(() => p.loss(new Ops(p.backend), ids, ids, 1).loss.data[0]);
    const train0 = scope(() => p.loss(new Ops(p.backend, { training: true, dropoutSeed: 7 }), ids, ids, 1).loss.data[0]);
    assert.notEqual(train0, eval0, 'dropout acts in training only');
  }
  const params = p.trainableParameters();
  assert.equal(params.length, 8);
  // Training mode with a fixed dropout seed: every evaluation draws the same masks.
  const lossNow = (): number => scope(() => p.loss(new Ops(p.backend, { training: true, dropoutSeed: 7 }), ids, ids, 1).loss.data[0] ?? NaN);
  const grads = new Map<Tensor, Float64Array>();
  scope(() => {
    const tape = new Tape();
    for (const [, w] of params) tape.watch(w);
    const { loss } = p.loss(new Ops(p.backend, { tape, dropoutSeed: 7 }), ids, ids, 1);
    tape.backward(p.backend, loss, Tensor.from([1], 'f32', [1]), (leaf, g) => {
      const acc = grads.get(leaf) ?? new Float64Array(leaf.size);
      for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] ?? 0) + (g.data[i] ?? 0);
      grads.set(leaf, acc);
    });
  });
  for (const [name, w] of params) {
    const g = grads.get(w);
    assert.ok(g !== undefined, `${name}: no gradient`);
    assert.ok(g.some((v) => Math.abs(v) > 1e-3), `${name}: gradient is ~0, the check would be vacuous`);
    for (const i of [0, Math.floor(w.size / 2), w.size - 1]) {
      const v = w.data[i] ?? 0;
      w.data[i] = v + EPS;
      const up = lossNow();
      w.data[i] = v - EPS;
      const down = lossNow();
      w.data[i] = v;
      const fd = (up - down) / (2 * EPS);
      const an = g[i] ?? NaN;
      assert.ok(Math.abs(fd - an) <= ABS_TOL + REL_TOL * Math.abs(fd), `${name}[${i}]: tape ${an}, finite difference ${fd}`);
    }
  }
});
