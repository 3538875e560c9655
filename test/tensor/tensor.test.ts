// Tensors live in native memory that is freed when released or when their scope ends,
// and the accounting follows every byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { native } from '../../src/backend/native/addon.js';
import { memoryStats, resetPeak } from '../../src/tensor/memory.js';
import { keep, scope } from '../../src/tensor/scope.js';
import { Tensor } from '../../src/tensor/tensor.js';

test('release frees native memory at once and detaches the data', () => {
  const before = native().nativeBytes().live;
  const t = Tensor.zeros([1024, 1024], 'f32', 'weights');
  assert.equal(native().nativeBytes().live - before, 4 * 1024 * 1024);
  assert.equal(t.data[5], 0);
  t.release();
  assert.equal(native().nativeBytes().live, before);
  assert.throws(() => t.data, /tensor used after release/);
  t.release(); // idempotent
});

test('native blocks do not drive V8\'s collector; an unreleased one is still collected', async () => {
  // V8 runs a full collection whenever its external-memory count grows by 64 MiB; with the
  // blocks counted, a training step's activations triggered one every few dozen ms.
  const MiB = 1024 * 1024;
  const majors = async (fn: () => void): Promise<number> => {
    let n = 0;
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) n++;
    });
    obs.observe({ entryTypes: ['gc'] });
    fn();
    await new Promise((r) => setTimeout(r, 50)); // entries arrive asynchronously
    obs.disconnect();
    return n;
  };
  const collections = await majors(() => {
    const ts = Array.from({ length: 64 }, () => Tensor.empty([4 * MiB], 'f32')); // 1 GiB, pages untouched
    for (const t of ts) t.release();
  });
  assert.equal(collections, 0, 'allocating and releasing 1 GiB ran no full collection');
  // A block nobody released is freed by the collector all the same.
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const live = native().nativeBytes().live;
  (() => void Tensor.empty([4 * MiB], 'f32'))();
  for (let i = 0; i < 5 && native().nativeBytes().live > live; i++) {
    gc();
    await new Promise((r) => setImmediate(r)); // finalizers run after the collection
  }
  assert.equal(native().nativeBytes().live, live);
});

test('a scope releases its activations except what it returns or keeps', () => {
  const before = native().nativeBytes().live;
  let inner: Tensor | undefined;
  let kept: Tensor | undefined;
  const out = scope(() => {
    inner = Tensor.zeros([100], 'f32');
    kept = keep(Tensor.zeros([10], 'f32'));
    return [Tensor.zeros([3], 'bf16')];
  });
  assert.ok(inner?.released);
  assert.equal(kept?.released, false);
  assert.equal(out[0]?.released, false);
  out[0]?.release();
  kept?.release();
  assert.equal(native().nativeBytes().live, before);
});

test('a scope that throws still releases its activations', () => {
  let t: Tensor | undefined;
  assert.throws(() =>
    scope(() => {
      t = Tensor.zeros([8], 'f32');
      throw new Error('boom');
    }),
  );
  assert.ok(t?.released);
});

test('accounting tracks current and peak bytes per category; persist() moves bytes', () => {
  resetPeak();
  const s0 = memoryStats();
  const w = Tensor.zeros([256], 'f32', 'weights');
  const a = scope(() => {
    Tensor.zeros([1000], 'f32');
    return Tensor.zeros([64], 'bf16');
  });
  const s1 = memoryStats();
  assert.equal(s1.current.weights - s0.current.weights, 1024);
  assert.equal(s1.current.activations - s0.current.activations, 128);
  assert.equal(s1.peak.activations - s0.current.activations, 4000 + 128);
  a.persist('weights');
  const s2 = memoryStats();
  assert.equal(s2.current.activations, s0.current.activations);
  assert.equal(s2.current.weights - s0.current.weights, 1024 + 128);
  w.release();
  a.release();
  assert.equal(memoryStats().totalCurrent, s0.totalCurrent);
});

test('shapes are validated', () => {
  assert.throws(() => Tensor.zeros([2, -1], 'f32'), /invalid dimension -1/);
  assert.throws(() => Tensor.from([2, 2], 'f32', [1, 2, 3]), /3 values do not fill shape \[2, 2\]/);
  const t = Tensor.from([2, 3], 'f32', [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(t.reshape([3, 2]).shape, [3, 2]);
  assert.throws(() => t.reshape([4, 2]), /cannot reshape/);
  t.release();
});
