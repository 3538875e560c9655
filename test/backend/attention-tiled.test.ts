// The tiled attention kernels (native/src/attention.h: tiles of ATTN_ROWS = 12 query rows
// against packed 32-key panels) against the float64 reference, under every ISA this CPU
// supports (the scalar ISA runs the row kernels, checked too): D = 80 and 72 (masked D
// tails), 64; T not a multiple of 12 (37 = 3 tiles + 1 row, 19 = 12 + 7) and T around the
// forward's tile threshold (T >= 12; the backward tiles any T); S not a multiple of 16 and
// spanning two key blocks; GQA (H = 4 Hkv) and MHA; S > T and Smax > S, with NaN cache rows
// past S that must not leak; and bit-identical results on repeat and for 1 or 2 threads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import { nativeNn } from '../../src/backend/native/nn.js';
import { nativeGrad } from '../../src/backend/native/grad.js';
import { refNn } from '../../src/backend/ref/nn.js';
import { refGrad } from '../../src/backend/ref/grad.js';
import { Rng } from '../helpers/random.js';
import { assertClose } from '../helpers/close.js';
import { eachIsa, withThreads } from '../helpers/isa.js';

const f32 = (shape: number[], values: ArrayLike<number>): Tensor<'f32'> => Tensor.from(shape, 'f32', values);

// The tolerances of nn.test.ts (forward: f32 dots and sums over <= 50 keys) and
// attention-grad.test.ts (backward at D = 80), on N(0,1) inputs with S <= 45 keys.
const ATTENTION_ATOL = 2e-6;
const ATTENTION_BWD_ATOL = 5e-5;

interface Case {
  B: number;
  T: number;
  H: number;
  Hkv: number;
  D: number;
  S: number;
}

const CASES: Case[] = [
  { B: 2, T: 37, H: 8, Hkv: 2, D: 80, S: 45 }, // GQA, 3 full tiles + 1 row, two key blocks
  { B: 1, T: 25, H: 3, Hkv: 3, D: 72, S: 25 }, // MHA, S = T, D tail of 8
  { B: 1, T: 19, H: 3, Hkv: 3, D: 64, S: 25 }, // a 7-row tile: past one 6-row register block
  { B: 2, T: 13, H: 4, Hkv: 1, D: 64, S: 20 }, // one kv head for all, S not a multiple of 16
  { B: 1, T: 12, H: 4, Hkv: 2, D: 80, S: 33 }, // the smallest tiled forward T: one full tile
  { B: 1, T: 11, H: 4, Hkv: 2, D: 64, S: 33 }, // forward below it: the row kernels; backward one 11-row tile
  { B: 1, T: 3, H: 4, Hkv: 2, D: 72, S: 40 }, // backward: a 3-row tile
];

/** q, dy (B,T,H,D) and k, v (B,Smax,Hkv,D), Smax = S + 3, with NaN in cache rows >= S. */
function inputs(rng: Rng, c: Case): { q: Tensor<'f32'>; k: Tensor<'f32'>; v: Tensor<'f32'>; dy: Tensor<'f32'> } {
  const Smax = c.S + 3, n = c.B * c.T * c.H * c.D, m = c.B * Smax * c.Hkv * c.D;
  const cache = (): Tensor<'f32'> => {
    const x = rng.normals(m);
    for (let b = 0; b < c.B; b++) x.fill(NaN, (b * Smax + c.S) * c.Hkv * c.D, (b + 1) * Smax * c.Hkv * c.D);
    return f32([c.B, Smax, c.Hkv, c.D], x);
  };
  return { q: f32([c.B, c.T, c.H, c.D], rng.normals(n)), k: cache(), v: cache(), dy: f32([c.B, c.T, c.H, c.D], rng.normals(n)) };
}

const label = (c: Case): string => `B=${c.B} T=${c.T} H=${c.H} Hkv=${c.Hkv} D=${c.D} S=${c.S}`;

test('tiled attention forward matches the reference (D tails, partial tiles, GQA / MHA, S > T)', () => {
  const rng = new Rng(51);
  for (const c of CASES) {
    const { q, k, v } = inputs(rng, c);
    const scale = 1 / Math.sqrt(c.D);
    const want = refNn.attention(q, k, v, c.S, scale).data;
    eachIsa((isa) => assertClose(nativeNn.attention(q, k, v, c.S, scale).data, want, 0, ATTENTION_ATOL, `${isa} ${label(c)}`));
  }
});

test('tiled attention backward matches the reference; dk, dv rows >= S stay zero', () => {
  const rng = new Rng(52);
  for (const c of CASES) {
    const { q, k, v, dy } = inputs(rng, c);
    const scale = 1 / Math.sqrt(c.D);
    const want = refGrad.attentionBackward(q, k, v, c.S, scale, dy);
    eachIsa((isa) => {
      const got = nativeGrad.attentionBackward(q, k, v, c.S, scale, dy);
      for (const name of ['dq', 'dk', 'dv'] as const) {
        assertClose(got[name].data, want[name].data, 0, ATTENTION_BWD_ATOL, `${name} ${isa} ${label(c)}`);
      }
    });
  }
});

test('tiled attention forward and backward are bit-identical on repeat and for 1 or 2 threads', () => {
  const rng = new Rng(53);
  const c = CASES[0];
  if (!c) throw new Error('case');
  const { q, k, v, dy } = inputs(rng, c);
  const bits = (x: { data: ArrayLike<number> }): Uint32Array => new Uint32Array(Float32Array.from(x.data).buffer);
  eachIsa((isa) => {
    const run = (t: number): Uint32Array[] => withThreads(t, () => {
      const g = nativeGrad.attentionBackward(q, k, v, c.S, 0.125, dy);
      return [nativeNn.attention(q, k, v, c.S, 0.125), g.dq, g.dk, g.dv].map(bits);
    });
    const first = run(2);
    assert.deepEqual(run(2), first, `${isa} repeat`);
    assert.deepEqual(run(1), first, `${isa} 1 thread`);
  });
});
