// Native random-fill exports (native/src/rand_bind.cc) and a checked fill on tensors.
// Synthetic models (bench/7b-qlora.ts) fill billions of weights with these: a JS
// Box-Muller loop would take minutes per model, the native counter-based fill seconds.
import { ShapeError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { check, native } from './addon.js';

export interface RandAddon {
  /** out (n) <- std * N(0, 1), element i a function of (seed, i) only. */
  randNormalF32(out: Float32Array, n: number, seed: number, std: number): number;
}

/** Fills t (f32, any shape) with std * N(0, 1) from `seed` (same values for any thread count). */
// t (...) f32 -> t, filled in place
export function fillNormal(t: Tensor<'f32'>, seed: number, std: number): Tensor<'f32'> {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new ShapeError(`fillNormal: seed ${seed} must be a non-negative safe integer`);
  check(native().randNormalF32(t.data, t.size, seed, std), 'rand_normal_f32');
  return t;
}
