// The fused LoRA op (src/autograd/lora-linear.ts): float64 finite-difference gradients on
// the reference backend (dense and 4-bit bases, with and without dropout), parity with
// the unfused ops it replaces on the native backend under every ISA (bit-identical when
// scaling is a power of two, within F32_RTOL / BF16_RTOL otherwise), and the activations
// it no longer keeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeBackend, refBackend, type Backend } from '../../src/backend/index.js';
import type { FTensor } from '../../src/backend/backend.js';
import { Ops } from '../../src/autograd/ops.js';
import { Tape } from '../../src/autograd/tape.js';
import type { LowRankBase } from '../../src/autograd/lora-linear.js';
import { Linear } from '../../src/nn/layers.js';
import { Linear4bit } from '../../src/nn/linear4bit.js';
import { LoraLinear, type LoraBase } from '../../src/peft/lora-layer.js';
import { memoryStats } from '../../src/tensor/memory.js';
import { scope } from '../../src/tensor/scope.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { dot, gradcheck, normals64 } from '../helpers/gradcheck.js';
import { eachIsa } from '../helpers/isa.js';
import { Rng } from '../helpers/random.js';

/**
 * Fused vs unfused with a scaling that is not a power of two, relative to the largest
 * value: f32 products differ by the rounding of f32 sums of ~K terms; bf16 products round
 * scaling * h (and scaling * dY B) to bf16 where the unfused ops round h (and scaling * dY),
 * a difference of one bf16 rounding (2^-8) of the low-rank branch.
 */
const F32_RTOL = 1e-5;
const BF16_RTOL = 2 ** -7;
const [M0, M1, K, N, R] = [2, 3, 12, 10, 4];

const f64 = (rng: Rng, shape: number[], std = 1): Tensor<'f64'> => Tensor.from(shape, 'f64', normals64(rng, shape.reduce((a, b) => a * b, 1), std));

for (const kind of ['dense', '4bit'] as const) for (const dropout of [0, 0.3]) {
  test(`gradcheck: loraLinear dx, dbias, dA, dB (${kind} base, dropout ${dropout})`, () => scope(() => {
    const rng = new Rng(40);
    const x = f64(rng, [M0, M1, K]), bias = f64(rng, [N]), a = f64(rng, [R, K], 0.5), b = f64(rng, [N, R], 0.5);
    const w = Tensor.from([N, K], 'f32', rng.normals(N * K, 0.5));
    const base: LowRankBase = kind === 'dense'
      ? { kind, weight: Tensor.from([N, K], 'f64', w.data), bias }
      : { kind, quant: refBackend.quantize4bit(w, { quantType: 'nf4', blocksize: 64, doubleQuant: false }), bias, computeDtype: 'f32' };
    const adapter = { a, b, scaling: 0.75, dropout };
    const P = normals64(rng, M0 * M1 * N);
    const opts = { training: true, dropoutSeed: 11 };
    const grads = new Map<Tensor, Float64Array>();
    const tape = new Tape();
    for (const t of [x, bias, a, b]) tape.watch(t);
    const y = new Ops(refBackend, { ...opts, tape }).loraLinear(x, base, adapter);
    assert.deepEqual(y.shape, [M0, M1, N]);
    tape.backward(refBackend, y, Tensor.from(y.shape, 'f64', P), (leaf, g) => {
      const acc = grads.get(leaf) ?? new Float64Array(leaf.size);
      g.data.forEach((v, i) => (acc[i] = (acc[i] ?? 0) + v));
      grads.set(leaf, acc);
    });
    const loss = (): number => scope(() => dot(P, new Ops(refBackend, opts).loraLinear(x, base, adapter).data));
    const inputs = ([['x', x], ['bias', bias], ['A', a], ['B', b]] as const).map(([name, t]) => ({ name, t, grad: grads.get(t) ?? new Float64Array(0) }));
    gradcheck({ loss, inputs, rng, rtol: 1e-6, samples: 40 });
  }));
}

interface Case {
  name: string;
  base: (rng: Rng) => LoraBase;
  matmulDtype: 'f32' | 'bf16';
}

const dense = (dtype: 'f32' | 'bf16') => (rng: Rng): LoraBase => {
  const w = Tensor.from([N, K], 'f32', rng.normals(N * K, 0.3), 'weights');
  return new Linear(dtype === 'f32' ? w : nativeBackend.cast(w, 'bf16').persist('weights'), Tensor.from([N], 'f32', rng.normals(N, 0.1), 'weights'));
};
const fourBit = (computeDtype: 'f32' | 'bf16') => (rng: Rng): LoraBase => {
  const w = Tensor.from([N, K], 'f32', rng.normals(N * K, 0.3));
  return new Linear4bit(nativeBackend.quantize4bit(w, { quantType: 'nf4', blocksize: 64, doubleQuant: true }), undefined, computeDtype);
};

const CASES: Case[] = [
  { name: 'f32 base', base: dense('f32'), matmulDtype: 'f32' },
  { name: 'f32 base, bf16 autocast', base: dense('f32'), matmulDtype: 'bf16' },
  { name: 'bf16 base, bf16 autocast', base: dense('bf16'), matmulDtype: 'bf16' },
  { name: '4-bit base, f32 compute', base: fourBit('f32'), matmulDtype: 'f32' },
  { name: '4-bit base, bf16 compute, bf16 autocast', base: fourBit('bf16'), matmulDtype: 'bf16' },
];

/** y, and the gradients of x (through a reshape, so the tape sums its contributions), A, B and the bias. */
function run(layer: LoraLinear, backend: Backend, c: Case, x0: Tensor<'f32'>, P: Float32Array): Float32Array[] {
  return scope(() => {
    const tape = new Tape();
    const { a, b } = layer.adapter('default');
    const bias = layer.base_layer instanceof Linear ? layer.base_layer.bias : undefined;
    const leaves = [x0, a.weight, b.weight, ...(bias === undefined ? [] : [bias])];
    for (const t of leaves) tape.watch(t);
    const ops = new Ops(backend, { tape, training: true, dropoutSeed: 5, matmulDtype: c.matmulDtype });
    const y = layer.forward(ops, ops.reshape(x0, [M0 * M1, K]));
    const out: Float32Array[] = [Float32Array.from(y.data)];
    const grads = new Map<Tensor, Float32Array>();
    tape.backward(backend, y, Tensor.from(y.shape, 'f32', P), (leaf, g: FTensor) => {
      assert.ok(!grads.has(leaf), 'one contribution per leaf');
      const copy = new Float32Array(g.size);
      copy.set(g.data);
      grads.set(leaf, copy);
    });
    for (const t of leaves) out.push(grads.get(t) ?? new Float32Array(0));
    return out;
  });
}

function layerFor(c: Case, seed: number, alpha: number, dropout: number): LoraLinear {
  const rng = new Rng(seed);
  const layer = new LoraLinear(c.base(rng));
  layer.addAdapter('default', { r: R, alpha, scaling: alpha / R, dropout, init: false }, rng);
  layer.setActive(['default']);
  return layer;
}

for (const c of CASES) for (const dropout of [0, 0.25]) {
  test(`loraLinear equals the unfused ops: ${c.name}, dropout ${dropout}`, () => eachIsa((isa) => {
    for (const alpha of [8, 6]) { // scaling 2 (exact) and 1.5
      const layer = layerFor(c, 3, alpha, dropout);
      const rng = new Rng(9);
      const x0 = Tensor.from([M0 * M1, K], 'f32', rng.normals(M0 * M1 * K));
      const P = Float32Array.from(rng.normals(M0 * M1 * N));
      const fused = run(layer, nativeBackend, c, x0, P);
      layer.fuse = false;
      const plain = run(layer, nativeBackend, c, x0, P);
      const names = ['y', 'dx', 'dA', 'dB', 'dbias'];
      plain.forEach((want, i) => {
        const got = fused[i] ?? new Float32Array(0);
        assert.equal(got.length, want.length, `${names[i]}: length`);
        assert.ok(want.some((v) => v !== 0), `${names[i]}: all zero, the check would be vacuous`);
        if (alpha === 8) {
          assert.deepEqual(got, want, `${isa} ${names[i]} (scaling 2) differs`);
          return;
        }
        const scale = Math.max(...Array.from(want, Math.abs));
        const rtol = c.matmulDtype === 'bf16' ? BF16_RTOL : F32_RTOL;
        want.forEach((v, j) => assert.ok(Math.abs((got[j] ?? NaN) - v) <= rtol * scale, `${isa} ${names[i]}[${j}]: fused ${got[j]} vs ${v}`));
      });
    }
  }));
}

test('loraLinear keeps no (M, N) B-product output or sum for backward', () => {
  const c = CASES[2] ?? CASES[0];
  if (c === undefined) return;
  const layer = layerFor(c, 3, 8, 0);
  const x = Tensor.from([M0 * M1, K], 'f32', new Rng(1).normals(M0 * M1 * K));
  const kept = (fuse: boolean): number => scope(() => {
    layer.fuse = fuse;
    const tape = new Tape();
    tape.watch(layer.adapter('default').a.weight);
    tape.watch(layer.adapter('default').b.weight);
    const before = memoryStats().current.activations;
    layer.forward(new Ops(nativeBackend, { tape, matmulDtype: c.matmulDtype }), x);
    return memoryStats().current.activations - before;
  });
  const saved = kept(false) - kept(true);
  assert.ok(saved >= 2 * M0 * M1 * N * 4, `fused path keeps ${saved} bytes less than the unfused one, expected >= ${2 * M0 * M1 * N * 4}`);
});

// dx sums three contributions in another association ((base + first) + second), so it
// agrees within f32 rounding; y, dA and dB keep their bits.
test('two active adapters: the first fuses, the second adds its branch (scaling 2)', () => {
  const c = CASES[0];
  if (c === undefined) return;
  const layer = layerFor(c, 3, 8, 0.25);
  layer.addAdapter('other', { r: 2, alpha: 1, scaling: 0.5, dropout: 0.25, init: false }, new Rng(4));
  layer.setActive(['default', 'other']);
  const rng = new Rng(9);
  const x0 = Tensor.from([M0 * M1, K], 'f32', rng.normals(M0 * M1 * K));
  const P = Float32Array.from(rng.normals(M0 * M1 * N));
  const fused = run(layer, nativeBackend, c, x0, P);
  layer.fuse = false;
  const [y, dx = new Float32Array(0), ...rest] = run(layer, nativeBackend, c, x0, P);
  assert.deepEqual([fused[0], ...fused.slice(2)], [y, ...rest]);
  const scale = Math.max(...Array.from(dx, Math.abs));
  dx.forEach((v, j) => assert.ok(Math.abs((fused[1]?.[j] ?? NaN) - v) <= F32_RTOL * scale, `dx[${j}]: fused ${fused[1]?.[j]} vs ${v}`));
});

// Two adapted layers reading one x (as q, k and v do): the second dX is added into the
// first in place (Tape AccumulateInto: the dense base's product accumulates; a 4-bit
// base's product cannot, so the tape adds it). x's gradient must equal the sum of each
// layer's alone; the sums differ only in f32 rounding order.
for (const c of CASES) {
  test(`loraLinear: two layers reading one x sum their dX (${c.name})`, () => eachIsa((isa) => {
    const layers = [layerFor(c, 3, 6, 0), layerFor(c, 4, 6, 0)];
    const rng = new Rng(10);
    const x0 = Tensor.from([M0 * M1, K], 'f32', rng.normals(M0 * M1 * K));
    const P = Float32Array.from(rng.normals(M0 * M1 * N));
    const alone = layers.map((layer) => run(layer, nativeBackend, c, x0, P)[1] ?? new Float32Array(0));
    const both = scope(() => {
      const tape = new Tape();
      tape.watch(x0);
      const ops = new Ops(nativeBackend, { tape, training: true, matmulDtype: c.matmulDtype });
      const x = ops.reshape(x0, [M0 * M1, K]);
      const y = ops.add(layers[0]!.forward(ops, x), layers[1]!.forward(ops, x));
      const dx = new Float32Array(x0.size);
      tape.backward(nativeBackend, y, Tensor.from(y.shape, 'f32', P), (_leaf, g: FTensor) => g.data.forEach((v, i) => (dx[i] = (dx[i] ?? 0) + v)));
      return dx;
    });
    const want = alone[0]!.map((v, i) => v + (alone[1]![i] ?? NaN));
    const scale = Math.max(...Array.from(want, Math.abs));
    want.forEach((v, j) => assert.ok(Math.abs((both[j] ?? NaN) - v) <= F32_RTOL * scale, `${isa} dx[${j}]: ${both[j]} vs ${v}`));
  }));
}
