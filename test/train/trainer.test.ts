// The Trainer on a real model (stories260K-hf) and real text: fine-tuning lowers the
// held-out loss, resuming from a checkpoint reproduces an uninterrupted run bit for bit,
// gradient accumulation and checkpointing change nothing but memory, early stopping
// stops on time and restores the best checkpoint.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AutoModelForCausalLM } from '../../src/models/auto.js';
import { AutoTokenizer } from '../../src/tokenizer/tokenizer.js';
import { EarlyStoppingCallback } from '../../src/train/callbacks.js';
import { Trainer } from '../../src/train/trainer.js';
import type { Example } from '../../src/data/index.js';
import { fixture } from '../helpers/data.js';
import { shakespeare } from '../helpers/train.js';

interface Fixture {
  dir: string;
  train: Example[];
  eval: Example[];
}

function setup(t: import('node:test').TestContext): Fixture | undefined {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  const text = fixture(t, 'datasets', 'tinyshakespeare.txt');
  if (dir === undefined || text === undefined) return undefined;
  const tok = AutoTokenizer.fromPretrainedSync(dir);
  return { dir, train: shakespeare(text, tok, 0, 128), eval: shakespeare(text, tok, 20000, 16) };
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'ftune-train-'));
}

function weights(model: { namedParameters(): Array<[string, { data: ArrayLike<number> }]> }): Float32Array[] {
  return model.namedParameters().map(([, p]) => Float32Array.from(p.data));
}

test('full fine-tuning lowers the held-out loss clearly below the base model', (t) => {
  const f = setup(t);
  if (f === undefined) return;
  const out = tmp();
  try {
    const model = AutoModelForCausalLM.fromPretrained(f.dir);
    const trainer = new Trainer({ model, args: { outputDir: out, maxSteps: 32, perDeviceTrainBatchSize: 4, learningRate: 3e-3, loggingSteps: 8, saveStrategy: 'no', seed: 1 }, trainDataset: f.train, evalDataset: f.eval });
    const before = trainer.evaluate()['eval_loss'] ?? NaN;
    const result = trainer.train();
    const after = trainer.evaluate()['eval_loss'] ?? NaN;
    t.diagnostic(`full: eval loss ${before.toFixed(4)} -> ${after.toFixed(4)}, train loss ${result.trainingLoss.toFixed(4)}`);
    assert.ok(after < before - 1, `eval loss ${before} -> ${after}`);
    const logged = trainer.state.logHistory.filter((e) => e['loss'] !== undefined).map((e) => e['step']);
    assert.deepEqual(logged, [8, 16, 24, 32]);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('resuming from a checkpoint after a crash equals an uninterrupted run, bit for bit', (t) => {
  const f = setup(t);
  if (f === undefined) return;
  const out1 = tmp();
  const out2 = tmp();
  try {
    const args = { maxSteps: 6, perDeviceTrainBatchSize: 4, learningRate: 2e-3, saveSteps: 3, loggingSteps: 1, seed: 3, lrSchedulerType: 'cosine' as const, warmupSteps: 2 };
    const a = AutoModelForCausalLM.fromPretrained(f.dir);
    const ra = new Trainer({ model: a, args: { ...args, outputDir: out1 }, trainDataset: f.train }).train();

    const crash = new Error('simulated kill after checkpoint-3');
    const b = AutoModelForCausalLM.fromPretrained(f.dir);
    const killer = { onSave: (): void => { throw crash; } };
    assert.throws(() => new Trainer({ model: b, args: { ...args, outputDir: out2 }, trainDataset: f.train, callbacks: [killer] }).train(), crash);
    assert.deepEqual(readdirSync(out2).filter((n) => n.startsWith('checkpoint')), ['checkpoint-3']);

    const c = AutoModelForCausalLM.fromPretrained(f.dir);
    const rc = new Trainer({ model: c, args: { ...args, outputDir: out2, resumeFromCheckpoint: 'latest' }, trainDataset: f.train }).train();
    assert.equal(rc.globalStep, 6);
    assert.equal(rc.trainingLoss, ra.trainingLoss);
    assert.deepEqual(weights(c), weights(a));
  } finally {
    rmSync(out1, { recursive: true, force: true });
    rmSync(out2, { recursive: true, force: true });
  }
});

test('gradient accumulation (2 x 2) and checkpointing give the same update as batch 4', (t) => {
  const f = setup(t);
  if (f === undefined) return;
  const run = (batch: number, accum: number, checkpointing: boolean): Float32Array[] => {
    const out = tmp();
    try {
      const model = AutoModelForCausalLM.fromPretrained(f.dir);
      new Trainer({ model, args: { outputDir: out, maxSteps: 2, perDeviceTrainBatchSize: batch, gradientAccumulationSteps: accum, optim: 'sgd', learningRate: 0.1, saveStrategy: 'no', seed: 5, gradientCheckpointing: checkpointing, maxGradNorm: 0 }, trainDataset: f.train }).train();
      return weights(model);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  };
  const plain = run(4, 1, false);
  assert.deepEqual(run(4, 1, true), plain, 'checkpointing recomputes the same values');
  // SGD, so weights differ by lr x the gradients' rounding (AdamW would amplify it).
  const accum = run(2, 2, false);
  let worst = 0;
  plain.forEach((w, i) => w.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - (accum[i]?.[j] ?? NaN))))));
  assert.ok(worst < 1e-6, `max weight difference ${worst}`);
  t.diagnostic(`max weight difference ${worst}`);
});

test('early stopping stops after `patience` evaluations without improvement and restores the best', (t) => {
  const f = setup(t);
  if (f === undefined) return;
  const out = tmp();
  try {
    const model = AutoModelForCausalLM.fromPretrained(f.dir);
    // SGD with a rate far too high: the eval loss improves at most briefly, then climbs.
    const trainer = new Trainer({
      model, args: { outputDir: out, maxSteps: 40, perDeviceTrainBatchSize: 4, optim: 'sgd', learningRate: 30, maxGradNorm: 0, lrSchedulerType: 'constant',
        evalStrategy: 'steps', evalSteps: 1, saveStrategy: 'steps', saveSteps: 1, loadBestModelAtEnd: true, seed: 2 },
      trainDataset: f.train, evalDataset: f.eval, callbacks: [new EarlyStoppingCallback({ patience: 2 })],
    });
    trainer.train();
    const evals = trainer.state.logHistory.filter((e) => e['eval_loss'] !== undefined).map((e) => e['eval_loss'] ?? NaN);
    const bestIndex = evals.indexOf(Math.min(...evals));
    assert.ok(trainer.state.globalStep < 40, 'stopped early');
    assert.equal(evals.length, bestIndex + 1 + 2, `evals ${evals.join(', ')}`);
    const best = trainer.state.bestModelCheckpoint;
    assert.equal(best, join(out, `checkpoint-${bestIndex + 1}`));
    assert.ok(Math.abs((trainer.evaluate()['eval_loss'] ?? NaN) - (evals[bestIndex] ?? NaN)) < 1e-9, 'best model restored');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
