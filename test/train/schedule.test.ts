// Learning-rate schedules against Transformers' formulas (optimization.py), evaluated
// by hand at chosen steps; AdamW and SGD defaults; TrainingArguments validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lrMultiplier, warmupSteps, type ScheduleSpec, type SchedulerType } from '../../src/train/schedule.js';
import { resolveTrainingArguments, TRAINING_DEFAULTS } from '../../src/train/args.js';

const spec = (type: ScheduleSpec['type']): ScheduleSpec => ({ type, warmupSteps: 10, totalSteps: 110, minLrRate: 0.1 });
const close = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);

test('warmup is linear from 0 for every schedule but constant', () => {
  for (const type of ['linear', 'cosine', 'constant_with_warmup', 'cosine_with_min_lr'] as const) {
    close(lrMultiplier(spec(type), 0), 0);
    close(lrMultiplier(spec(type), 5), 0.5);
  }
  close(lrMultiplier(spec('constant'), 0), 1);
});

test('decay after warmup: linear to 0, cosine to 0, cosine_with_min_lr to the floor, constant stays', () => {
  close(lrMultiplier(spec('linear'), 10), 1);
  close(lrMultiplier(spec('linear'), 60), 0.5);
  close(lrMultiplier(spec('linear'), 110), 0);
  close(lrMultiplier(spec('cosine'), 60), 0.5);
  close(lrMultiplier(spec('cosine'), 35), 0.5 * (1 + Math.cos(Math.PI * 0.25)));
  close(lrMultiplier(spec('cosine'), 110), 0);
  close(lrMultiplier(spec('cosine_with_min_lr'), 110), 0.1);
  close(lrMultiplier(spec('cosine_with_min_lr'), 60), 0.5 * 0.9 + 0.1);
  close(lrMultiplier(spec('constant_with_warmup'), 100), 1);
  assert.equal(warmupSteps(0, 0.1, 110), 11);
  assert.equal(warmupSteps(7, 0.1, 110), 7);
});

test('TrainingArguments: Transformers defaults; invalid fields are named', () => {
  assert.equal(TRAINING_DEFAULTS.learningRate, 5e-5);
  assert.equal(TRAINING_DEFAULTS.adamBeta1, 0.9);
  assert.equal(TRAINING_DEFAULTS.adamBeta2, 0.999);
  assert.equal(TRAINING_DEFAULTS.adamEpsilon, 1e-8);
  assert.equal(resolveTrainingArguments({ outputDir: 'x', loggingSteps: 7 }).evalSteps, 7);
  const unknown: string = 'cosine_restarts';
  assert.throws(() => resolveTrainingArguments({ outputDir: 'x', lrSchedulerType: unknown as SchedulerType }), /lrSchedulerType "cosine_restarts" is not a known schedule/);
  assert.throws(() => resolveTrainingArguments({ outputDir: 'x', perDeviceTrainBatchSize: 0 }), /perDeviceTrainBatchSize = 0 is invalid/);
  assert.throws(() => resolveTrainingArguments({ outputDir: 'x', loadBestModelAtEnd: true, evalStrategy: 'steps', evalSteps: 4, saveSteps: 6 }), /saveSteps must be a multiple of evalSteps/);
});
