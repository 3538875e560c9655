// Ops.attention under autocast: with matmulDtype 'bf16' the forward and the taped backward
// are the backend's bf16 attention (bf16 products where the CPU has them), with 'f32' its
// f32 attention, bit for bit, so a `--bf16` training step runs the bf16 kernels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeBackend } from '../../src/backend/index.js';
import { activeIsa, native } from '../../src/backend/native/addon.js';
import type { FTensor } from '../../src/backend/backend.js';
import { Ops } from '../../src/autograd/ops.js';
import { Tape } from '../../src/autograd/tape.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../helpers/random.js';

const B = 1, T = 24, H = 4, Hkv = 2, D = 64;

test('Ops.attention runs the backend\'s bf16 attention under autocast and its f32 attention otherwise', () => {
  const rng = new Rng(61);
  const f32 = (shape: number[]): Tensor<'f32'> => Tensor.from(shape, 'f32', rng.normals(shape.reduce((a, b) => a * b, 1)));
  const q = f32([B, T, H, D]), k = f32([B, T, Hkv, D]), v = f32([B, T, Hkv, D]), dy = f32([B, T, H, D]);
  const bits = (x: FTensor): number[] => Array.from(new Uint32Array(Float32Array.from(x.data).buffer));
  for (const bf16 of [false, true]) {
    const tape = new Tape();
    for (const x of [q, k, v]) tape.watch(x);
    const ops = new Ops(nativeBackend, { tape, training: true, matmulDtype: bf16 ? 'bf16' : 'f32' });
    const y = ops.attention(q, k, v, T, 0.125);
    assert.deepEqual(bits(y), bits(nativeBackend.attention(q, k, v, T, 0.125, bf16)), `forward, bf16 ${bf16}`);
    const want = nativeBackend.attentionBackward(q, k, v, T, 0.125, dy, bf16);
    const grads = new Map<Tensor, FTensor>();
    // The tape frees its seed and the forward output as it goes: seed it with a copy.
    tape.backward(nativeBackend, y, Tensor.from(dy.shape, 'f32', dy.data), (leaf, g) => void grads.set(leaf, Tensor.from(g.shape, 'f32', g.data)));
    for (const [x, name] of [[q, 'dq'], [k, 'dk'], [v, 'dv']] as const) {
      const g = grads.get(x);
      assert.ok(g !== undefined, name);
      assert.deepEqual(bits(g), bits(want[name]), `${name}, bf16 ${bf16}`);
    }
  }
  // Where the CPU has bf16 products the two attentions differ, so the checks above tell them apart.
  if (native().cpuFeatures().avx512bf16 && activeIsa() === 'avx512') {
    assert.notDeepEqual(bits(nativeBackend.attention(q, k, v, T, 0.125, true)), bits(nativeBackend.attention(q, k, v, T, 0.125)));
  }
});
