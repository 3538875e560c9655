// The tape's gradient sums. A tensor read by several ops collects one gradient per
// reader; the native training path adds later contributions into the first one in place
// (a GEMM with accumulate through AccumulateInto, else an in-place add) instead of making
// a new (N, C) sum each time. These tests check the sums against float64 and that a
// gradient two entries share (add's rule hands g to both inputs) is never written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeBackend, refBackend, type Backend } from '../../src/backend/index.js';
import type { FTensor } from '../../src/backend/backend.js';
import { Ops } from '../../src/autograd/ops.js';
import { Tape } from '../../src/autograd/tape.js';
import { scope } from '../../src/tensor/scope.js';
import { Tensor } from '../../src/tensor/tensor.js';
import type { FloatDType } from '../../src/tensor/dtype.js';
import { Rng } from '../helpers/random.js';
import { assertClose } from '../helpers/close.js';

const [M, C] = [7, 12];

interface Inputs {
  x0: Float32Array;
  w: Float32Array[];
  seed: Float32Array;
}

function inputs(seed: number): Inputs {
  const rng = new Rng(seed);
  return { x0: rng.normals(M * C), w: Array.from({ length: 5 }, () => rng.normals(C * C, 0.3)), seed: rng.normals(M * C) };
}

/** Counts the backend's calls by name (the real backend underneath). */
function counting(backend: Backend): { backend: Backend; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const proxy = new Proxy(backend, {
    get(target, key, receiver) {
      const v: unknown = Reflect.get(target, key, receiver);
      if (typeof v !== 'function' || typeof key !== 'string') return v;
      return (...args: unknown[]) => {
        calls.set(key, (calls.get(key) ?? 0) + 1);
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { backend: proxy, calls };
}

/**
 * x0's gradient through `graph` (x0 watched; the weights frozen), in `dtype`, with
 * `matmulDtype` products.
 */
function gradOf(backend: Backend, dtype: FloatDType, data: Inputs, graph: (ops: Ops, x: FTensor, w: Tensor[]) => FTensor, matmulDtype: 'f32' | 'bf16' = 'f32'): Float64Array {
  return scope(() => {
    const tape = new Tape();
    const x0 = Tensor.from([M, C], dtype, data.x0);
    tape.watch(x0);
    const w = data.w.map((v) => Tensor.from([C, C], dtype, v));
    const y = graph(new Ops(backend, { tape, matmulDtype }), x0, w);
    const out = new Float64Array(M * C);
    tape.backward(backend, y, Tensor.from([M, C], dtype, data.seed), (_leaf, g) => g.data.forEach((v, i) => (out[i] = (out[i] ?? 0) + v)));
    return out;
  });
}

// x = x0 W0^T is read by three layers (q, k, v), and their sum goes through one more.
const threeReaders = (ops: Ops, x0: FTensor, w: Tensor[]): FTensor => {
  const x = ops.linear(x0, w[0]!);
  const s = ops.add(ops.add(ops.linear(x, w[1]!), ops.linear(x, w[2]!)), ops.linear(x, w[3]!));
  return ops.linear(s, w[4]!);
};

// a is read by add (with b) and by a layer; add hands the same g to a and b, so a's
// second contribution must not be added into the g that b's entry still holds. Then a
// tensor added to itself (both of add's inputs are one tensor).
const sharedGradient = (ops: Ops, x0: FTensor, w: Tensor[]): FTensor => {
  const a = ops.linear(x0, w[0]!), b = ops.linear(x0, w[1]!);
  const c = ops.linear(a, w[2]!);
  const u = ops.add(a, b);
  const d = ops.linear(ops.add(u, c), w[3]!);
  return ops.add(ops.add(d, d), u);
};

// f32 sums and products over <= 12 terms of N(0, 0.3) weights: relative 1e-5.
for (const [name, graph] of [['three readers', threeReaders], ['a shared gradient', sharedGradient]] as const) {
  test(`tape sums: ${name}, native f32 against float64`, () => {
    const data = inputs(name.length);
    const want = gradOf(refBackend, 'f64', data, graph);
    const got = gradOf(nativeBackend, 'f32', data, graph);
    const scale = Math.max(...want.map(Math.abs));
    assertClose(got, want, 0, 1e-5 * scale, name);
  });
}

test('tape sums: readers of one tensor add their dX into its gradient, no separate sums', () => {
  const data = inputs(3);
  for (const matmulDtype of ['f32', 'bf16'] as const) {
    const { backend, calls } = counting(nativeBackend);
    gradOf(backend, 'f32', data, threeReaders, matmulDtype);
    // x's three readers: the first dX is new, the other two products accumulate into it.
    for (const op of ['addScaled', 'addScaledInPlace']) assert.equal(calls.get(op) ?? 0, 0, `${matmulDtype}: ${op} called`);
  }
});

// A checkpointed block's backward runs on a private tape whose seed is the outer tape's
// gradient; when the outer tape shares that gradient with another entry (add hands g to
// both inputs), the inner tape must neither sum into it in place nor free it. Here the
// block's residual x1 collects RMSNorm's dx on top of the seed, and z's gradient shares it.
test('tape sums: a checkpointed block neither writes into nor frees its seed, which the outer tape may share', () => {
  const data = inputs(4);
  const norm = Float32Array.from({ length: C }, (_, i) => 1 + i / C);
  const block = (ops: Ops, x: FTensor, w: Tensor[]): FTensor => {
    const x1 = ops.linear(x, w[1]!);
    return ops.add(x1, ops.linear(ops.rmsnorm(x1, Tensor.from([C], x.dtype, norm), 1e-5), w[2]!));
  };
  const graph = (checkpoint: boolean) => (ops: Ops, x0: FTensor, w: Tensor[]): FTensor => {
    const z = ops.linear(x0, w[3]!);
    const x = ops.linear(x0, w[0]!);
    const y = checkpoint ? ops.checkpoint(x, (o, xi) => block(o, xi, w)) : block(ops, x, w);
    return ops.add(y, z);
  };
  const want = gradOf(refBackend, 'f64', data, graph(false));
  const scale = Math.max(...want.map(Math.abs));
  for (const checkpoint of [false, true]) assertClose(gradOf(nativeBackend, 'f32', data, graph(checkpoint)), want, 0, 1e-5 * scale, `checkpoint ${checkpoint}`);
});
