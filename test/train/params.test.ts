// Flat parameter buffers split into segments (Node caps one buffer at 4 GiB; a 1.1B
// model has 4.4 GB of f32 values): a parameter never straddles two segments, AdamW over
// segments gives bit-identical values to one buffer, the gradient norm matches, and a
// checkpoint written from one layout restores exactly into another. Allocations past
// the buffer limit fail with a typed error before any memory is touched.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeBackend } from '../../src/backend/index.js';
import { native } from '../../src/backend/native/addon.js';
import { ShapeError } from '../../src/errors.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { resolveTrainingArguments } from '../../src/train/args.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { Optimizer } from '../../src/train/optim.js';
import { FlatParams } from '../../src/train/params.js';
import { newTrainerState } from '../../src/train/state.js';
import { Rng } from '../helpers/random.js';

const SHAPES: Array<[string, number[]]> = [
  ['embed.weight', [50, 16]], ['layer.0.q.weight', [16, 16]], ['layer.0.mlp.weight', [40, 16]],
  ['layer.1.q.weight', [16, 16]], ['layer.0.norm.weight', [16]], ['head.bias', [50]],
];

function build(seed: number, segmentValues?: number): FlatParams {
  const rng = new Rng(seed);
  const all: Array<[string, Tensor]> = SHAPES.map(([name, shape]) => {
    const t = Tensor.zeros(shape, 'f32', 'weights');
    for (let i = 0; i < t.size; i++) t.data[i] = rng.normal();
    return [name, t];
  });
  return new FlatParams(all, undefined, segmentValues);
}

function fillGrads(p: FlatParams, seed: number): void {
  const rng = new Rng(seed);
  for (const t of p.tensors) {
    const g = p.gradOf(t);
    for (let i = 0; i < g.size; i++) g.data[i] = rng.normal() * 0.1;
  }
}

const spec = { name: 'adamw' as const, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };

test('segments: greedy runs under the cap, no parameter straddles two, decayed parameters first', () => {
  const p = build(1, 900);
  // 800 | 256+640 = 896 | 256+16+50 = 322 (the norm and bias are exempt from decay, so last)
  assert.deepEqual(p.segments.map((s) => [s.start, s.count]), [[0, 800], [800, 896], [1696, 322]]);
  assert.equal(p.count, 2018);
  assert.equal(p.decayCount, 1952);
  assert.deepEqual(p.names.slice(-2), ['layer.0.norm.weight', 'head.bias']);
  // A parameter bigger than the cap gets a segment of its own.
  assert.deepEqual(build(1, 100).segments.map((s) => s.count), [800, 256, 640, 256, 66]);
});

test('segments: AdamW and the gradient norm over segments equal one buffer exactly', () => {
  const backend = nativeBackend;
  const one = build(2);
  const many = build(2, 300);
  assert.equal(one.segments.length, 1);
  assert.ok(many.segments.length > 3);
  const [o1, o2] = [new Optimizer(one, spec), new Optimizer(many, spec)];
  for (let step = 0; step < 3; step++) {
    fillGrads(one, 10 + step);
    fillGrads(many, 10 + step);
    const [n1, n2] = [one.gradNorm(backend), many.gradNorm(backend)];
    assert.ok(Math.abs(n1 - n2) <= 1e-12 * n1, `${n1} vs ${n2}`);
    o1.update(backend, 1e-2, 0.5);
    o2.update(backend, 1e-2, 0.5);
  }
  one.tensors.forEach((t, i) => assert.deepEqual(many.tensors[i]?.data, t.data, one.names[i]));
  many.zeroGrad();
  assert.equal(many.gradNorm(backend), 0);
});

test('segments: a checkpoint from one layout restores exactly into another', () => {
  const backend = nativeBackend;
  const dir = mkdtempSync(join(tmpdir(), 'ftune-params-'));
  try {
    const src = build(3, 500);
    const opt = new Optimizer(src, spec);
    fillGrads(src, 20);
    opt.update(backend, 1e-2, 1);
    const args = resolveTrainingArguments({ outputDir: dir });
    const state = newTrainerState({ maxSteps: 1, numTrainEpochs: 1, metricName: 'eval_loss', greaterIsBetter: false, loggingSteps: 1, evalSteps: 1, saveSteps: 1, trainBatchSize: 1 });
    const ckpt = join(dir, 'checkpoint-1');
    saveCheckpoint(ckpt, { saveModel: () => {}, optimizer: opt, state, totals: { lossSinceLog: 0, stepsSinceLog: 0, lossTotal: 0, stepsTotal: 0 }, args, schedule: {} });
    const dst = build(4);
    const restored = new Optimizer(dst, spec);
    loadCheckpoint(ckpt, restored);
    assert.equal(restored.step, 1);
    src.tensors.forEach((t, i) => assert.deepEqual(dst.tensors[i]?.data, t.data, src.names[i]));
    src.segments.forEach((s) => {
      for (const which of ['m', 'v'] as const) {
        const whole = dst.segments[0]?.[which].data.subarray(s.start, s.start + s.count);
        assert.deepEqual(whole, s[which].data, which);
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a buffer past Node\'s limit is refused before allocating: RangeError natively, ShapeError for tensors', () => {
  assert.throws(() => native().alloc(2 ** 32 + 64), (e: unknown) => e instanceof RangeError && /exceeds the largest buffer Node allows/.test(e.message));
  assert.throws(() => Tensor.zeros([2 ** 30 + 16], 'f32', 'weights'), (e: unknown) => e instanceof ShapeError && /more than one Node buffer can hold/.test(e.message));
});
