// Finite-difference gradient checks in float64 (STYLE.md rule 12, after ggml's
// test-backend-ops): the analytic gradient of L = <P, f(inputs)> for a random projection
// P is compared with central differences (L(x + h e_i) - L(x - h e_i)) / 2h on every
// element of each input, or on a seeded random sample of them.
import assert from 'node:assert/strict';
import type { Tensor } from '../../src/tensor/tensor.js';
import type { Rng } from './random.js';

/** One differentiable input: its f64 tensor and the analytic dL/d(input) (same size). */
export interface GradInput {
  name: string;
  t: Tensor<'f64'>;
  grad: ArrayLike<number>;
}

export interface GradcheckOptions {
  /** The scalar L, recomputed from the inputs' current values (the forward op). */
  loss: () => number;
  inputs: GradInput[];
  rng: Rng;
  /** Step of the central difference. */
  h?: number;
  /** Elements checked per input (all when the input is smaller). */
  samples?: number;
  /** |numeric - analytic| <= rtol * max(|analytic|, mean |analytic| of the input). */
  rtol?: number;
}

/** Element-wise normals as float64 (a projection P or an f64 test input). */
export function normals64(rng: Rng, n: number, std = 1): Float64Array {
  return Float64Array.from({ length: n }, () => rng.normal() * std);
}

/** <p, x> in float64. */
export function dot(p: ArrayLike<number>, x: ArrayLike<number>): number {
  assert.equal(p.length, x.length, 'dot: lengths differ');
  let s = 0;
  for (let i = 0; i < p.length; i++) s += (p[i] ?? 0) * (x[i] ?? 0);
  return s;
}

/** Asserts every sampled element's central difference matches the analytic gradient. */
export function gradcheck(opts: GradcheckOptions): void {
  const h = opts.h ?? 1e-6, samples = opts.samples ?? 64, rtol = opts.rtol ?? 1e-6;
  for (const { name, t, grad } of opts.inputs) {
    assert.equal(grad.length, t.size, `${name}: analytic gradient has ${grad.length} elements for ${t.size}`);
    let mean = 0;
    for (let i = 0; i < grad.length; i++) mean += Math.abs(grad[i] ?? 0) / grad.length;
    const picks = t.size <= samples ? Array.from({ length: t.size }, (_, i) => i) : Array.from({ length: samples }, () => opts.rng.int(t.size));
    for (const i of picks) {
      const x = t.data[i] ?? 0;
      t.data[i] = x + h;
      const up = opts.loss();
      t.data[i] = x - h;
      const down = opts.loss();
      t.data[i] = x;
      const numeric = (up - down) / (2 * h), analytic = grad[i] ?? NaN;
      const tol = rtol * Math.max(Math.abs(analytic), mean, 1e-12);
      if (!(Math.abs(numeric - analytic) <= tol)) {
        assert.fail(`${name}[${i}]: analytic ${analytic} vs central difference ${numeric} (tolerance ${tol.toExponential(2)})`);
      }
    }
  }
}
