// RoPE fused into attention (Backend.attention / attentionBackward with `rope`, used in
// training where there is no KV cache): the native drivers rotate q and k rows while
// gathering them and rotate dq and dk back with the rope op's own kernel, so the results
// must equal rope, then attention (and attention's backward, then ropeBackward on dq and
// dk) bit for bit: under every ISA this CPU supports (the scalar ISA runs the row kernels
// on rotated copies), f32 and bf16 (autocast) products, GQA and MHA, T below and above the
// tiled kernels' threshold and not a multiple of their 12-row tiles, positions out of
// order, on one thread and two. The reference backend must agree with its own unfused
// composition, and a cache (s or Smax past T) is refused with a hint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import { nativeNn } from '../../src/backend/native/nn.js';
import { nativeGrad } from '../../src/backend/native/grad.js';
import { refNn } from '../../src/backend/ref/nn.js';
import { refGrad } from '../../src/backend/ref/grad.js';
import { ShapeError } from '../../src/errors.js';
import { Rng } from '../helpers/random.js';
import { eachIsa, withThreads } from '../helpers/isa.js';

const f32 = (shape: number[], values: ArrayLike<number>): Tensor<'f32'> => Tensor.from(shape, 'f32', values);

const CASES = [
  { B: 2, T: 37, H: 8, Hkv: 2, D: 64 }, // GQA, 3 tiles + 1 row
  { B: 1, T: 25, H: 3, Hkv: 3, D: 80 }, // MHA, a D tail past 64
  { B: 2, T: 7, H: 4, Hkv: 2, D: 16 }, // below the forward's tile threshold (row kernels)
];

function inputs(c: (typeof CASES)[number], seed: number) {
  const rng = new Rng(seed);
  const { B, T, H, Hkv, D } = c;
  return {
    q: f32([B, T, H, D], rng.normals(B * T * H * D)),
    k: f32([B, T, Hkv, D], rng.normals(B * T * Hkv * D)),
    v: f32([B, T, Hkv, D], rng.normals(B * T * Hkv * D)),
    g: f32([B, T, H, D], rng.normals(B * T * H * D)),
    rope: {
      positions: Int32Array.from({ length: T }, () => rng.int(2048)),
      invFreq: Float32Array.from({ length: D / 2 }, (_, j) => 1 / 10000 ** ((2 * j) / D)),
    },
  };
}

for (const bf16 of [false, true]) {
  test(`attention with rope fused: rope then attention bit for bit, forward and backward (${bf16 ? 'bf16' : 'f32'})`, () => {
    CASES.forEach((c, ci) => {
      const { q, k, v, g, rope } = inputs(c, 40 + ci);
      const scale = 1 / Math.sqrt(c.D);
      eachIsa((isa) => [1, 2].forEach((threads) => withThreads(threads, () => {
        const at = `${isa}, ${threads} threads, case ${ci}`;
        const qr = nativeNn.rope(q, rope.positions, rope.invFreq), kr = nativeNn.rope(k, rope.positions, rope.invFreq);
        const want = nativeNn.attention(qr, kr, v, c.T, scale, bf16);
        assert.deepEqual(nativeNn.attention(q, k, v, c.T, scale, bf16, rope).data, want.data, `forward, ${at}`);
        const plain = nativeGrad.attentionBackward(qr, kr, v, c.T, scale, g, bf16);
        const fused = nativeGrad.attentionBackward(q, k, v, c.T, scale, g, bf16, rope);
        assert.deepEqual(fused.dq.data, nativeGrad.ropeBackward(plain.dq, rope.positions, rope.invFreq).data, `dq, ${at}`);
        assert.deepEqual(fused.dk.data, nativeGrad.ropeBackward(plain.dk, rope.positions, rope.invFreq).data, `dk, ${at}`);
        assert.deepEqual(fused.dv.data, plain.dv.data, `dv, ${at}`);
      })));
    });
  });
}

test('attention with rope fused: the reference equals its own rope then attention', () => {
  const c = CASES[2]!;
  const { q, k, v, g, rope } = inputs(c, 50);
  const scale = 1 / Math.sqrt(c.D);
  for (const bf16 of [false, true]) {
    const qr = refNn.rope(q, rope.positions, rope.invFreq), kr = refNn.rope(k, rope.positions, rope.invFreq);
    assert.deepEqual(refNn.attention(q, k, v, c.T, scale, bf16, rope).data, refNn.attention(qr, kr, v, c.T, scale, bf16).data);
    const plain = refGrad.attentionBackward(qr, kr, v, c.T, scale, g, bf16);
    const fused = refGrad.attentionBackward(q, k, v, c.T, scale, g, bf16, rope);
    assert.deepEqual(fused.dq.data, refGrad.ropeBackward(plain.dq, rope.positions, rope.invFreq).data);
    assert.deepEqual(fused.dk.data, refGrad.ropeBackward(plain.dk, rope.positions, rope.invFreq).data);
    assert.deepEqual(fused.dv.data, plain.dv.data);
  }
});

test('attention with rope fused: a KV cache (s or Smax past T) or a wrong table is refused', () => {
  const c = CASES[2]!;
  const { q, g, rope } = inputs(c, 51);
  const rng = new Rng(52);
  const kv = f32([c.B, c.T + 3, c.Hkv, c.D], rng.normals(c.B * (c.T + 3) * c.Hkv * c.D));
  for (const s of [c.T, c.T + 3]) {
    assert.throws(() => nativeNn.attention(q, kv, kv, s, 0.25, false, rope), (e: unknown) => e instanceof ShapeError && /no KV cache/.test(e.message) && e.hint !== undefined);
    assert.throws(() => nativeGrad.attentionBackward(q, kv, kv, s, 0.25, g, false, rope), ShapeError);
  }
  const k = f32([c.B, c.T, c.Hkv, c.D], rng.normals(c.B * c.T * c.Hkv * c.D));
  assert.throws(() => nativeNn.attention(q, k, k, c.T, 0.25, false, { positions: rope.positions.subarray(1), invFreq: rope.invFreq }), /positions/);
  assert.throws(() => nativeNn.attention(q, k, k, c.T, 0.25, false, { positions: rope.positions, invFreq: rope.invFreq.subarray(1) }), /invFreq/);
});
