// Attention backward at larger D: parity with the reference for D past one 64-wide chunk
// (80), T = 9 (a partial row tile of the AVX-512 tiled kernel, attention-tiled.test.ts),
// GQA and MHA, S > T; and bit-identical results on repeat and for 1 or 2 threads (each
// thread owns whole (b, kv head) slices). The small shapes are in grad.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import { nativeGrad } from '../../src/backend/native/grad.js';
import { native } from '../../src/backend/native/addon.js';
import { refGrad } from '../../src/backend/ref/grad.js';
import { Rng } from '../helpers/random.js';
import { assertClose } from '../helpers/close.js';
import { eachIsa, withThreads } from '../helpers/isa.js';

const f32 = (shape: number[], values: ArrayLike<number>): Tensor<'f32'> => Tensor.from(shape, 'f32', values);

// f32 dots over D = 80 and sums over <= 12 keys and the H/Hkv * T rows that see a key,
// vs float64 on N(0,1) inputs (grad.test.ts uses 2e-5 at D <= 12).
const ATTENTION_BWD_ATOL = 5e-5;

function inputs(rng: Rng, B: number, T: number, H: number, Hkv: number, D: number, Smax: number): Tensor<'f32'>[] {
  const n = B * T * H * D, m = B * Smax * Hkv * D;
  return [f32([B, T, H, D], rng.normals(n)), f32([B, Smax, Hkv, D], rng.normals(m)), f32([B, Smax, Hkv, D], rng.normals(m)), f32([B, T, H, D], rng.normals(n))];
}

test('attentionBackward: D = 80 (two chunks), T = 9 (a partial row block), GQA and MHA match the reference', () => {
  const rng = new Rng(31);
  for (const { H, Hkv } of [{ H: 4, Hkv: 2 }, { H: 3, Hkv: 3 }]) {
    const B = 2, T = 9, D = 80, S = T + 3, Smax = S + 2;
    const [q, k, v, dy] = inputs(rng, B, T, H, Hkv, D, Smax);
    if (!q || !k || !v || !dy) throw new Error('inputs');
    const want = refGrad.attentionBackward(q, k, v, S, 1 / Math.sqrt(D), dy);
    eachIsa((isa) => {
      const got = nativeGrad.attentionBackward(q, k, v, S, 1 / Math.sqrt(D), dy);
      for (const name of ['dq', 'dk', 'dv'] as const) {
        assertClose(got[name].data, want[name].data, 0, ATTENTION_BWD_ATOL, `${name} ${isa} H=${H} Hkv=${Hkv}`);
      }
    });
  }
});

test('attentionBackward is deterministic: bit-identical on repeat and for 1 or 2 threads', () => {
  const rng = new Rng(32);
  const B = 3, T = 37, H = 4, Hkv = 2, D = 64, S = T, Smax = T;
  const [q, k, v, dy] = inputs(rng, B, T, H, Hkv, D, Smax);
  if (!q || !k || !v || !dy) throw new Error('inputs');
  eachIsa((isa) => {
    const run = (t: number): Uint32Array[] => withThreads(t, () => {
      const g = nativeGrad.attentionBackward(q, k, v, S, 0.125, dy);
      return [g.dq, g.dk, g.dv].map((x) => new Uint32Array(x.data.buffer, x.data.byteOffset, x.size));
    });
    const first = run(2);
    assert.deepEqual(run(2), first, `${isa} repeat`);
    assert.deepEqual(run(1), first, `${isa} 1 thread`);
  });
});

test('attentionBackward writes dq, dk and dv whole, rows past S included: NaN-filled outputs give the same bits (the wrapper allocates them uninitialized)', () => {
  const rng = new Rng(33);
  const B = 2, T = 13, H = 4, Hkv = 2, D = 64, S = T + 2, Smax = S + 3;
  const [q, k, v, dy] = inputs(rng, B, T, H, Hkv, D, Smax);
  if (!q || !k || !v || !dy) throw new Error('inputs');
  eachIsa((isa) => {
    const run = (fill: number): Float32Array[] => {
      const out = [q.size, k.size, v.size].map((n) => new Float32Array(n).fill(fill));
      const [dq, dk, dv] = out as [Float32Array, Float32Array, Float32Array];
      assert.equal(native().gradAttentionBwdF32(q.data, k.data, v.data, dy.data, dq, dk, dv, B, T, H, Hkv, D, Smax, S, 0.125, false), 0, isa);
      return out;
    };
    assert.deepEqual(run(NaN), run(0), isa);
  });
});
