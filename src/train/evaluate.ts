// Evaluation of a causal LM on tokenized examples: token-weighted mean cross-entropy,
// perplexity and next-token accuracy over the labelled tokens (labels != -100).
import { Ops, type CrossEntropyResult } from '../autograd/ops.js';
import type { Backend } from '../backend/backend.js';
import { DataLoader, type Example } from '../data/index.js';
import { scope } from '../tensor/scope.js';

export interface LossModel {
  backend: Backend;
  loss(ops: Ops, ids: Int32Array, labels: Int32Array, batch: number, opts: { checkpoint?: boolean }): CrossEntropyResult;
}

export interface EvalResult {
  loss: number;
  perplexity: number;
  tokens: number;
  tokenAccuracy: number;
  seconds: number;
}

export function evaluateLoss(model: LossModel, examples: Example[], opts: { batchSize: number; padId: number; bf16?: boolean }): EvalResult {
  const started = performance.now();
  const loader = new DataLoader(examples, { batchSize: opts.batchSize, shuffle: false, seed: 0, padId: opts.padId });
  const ops = new Ops(model.backend, { training: false, matmulDtype: opts.bf16 === true ? 'bf16' : 'f32' });
  let sum = 0;
  let count = 0;
  let correct = 0;
  for (const batch of loader.epoch(0)) {
    scope(() => {
      const r = model.loss(ops, batch.inputIds, batch.labels, batch.batchSize, {});
      sum += r.sum;
      count += r.count;
      correct += r.correct;
    });
  }
  const loss = count > 0 ? sum / count : 0;
  return { loss, perplexity: Math.exp(loss), tokens: count, tokenAccuracy: count > 0 ? correct / count : 0, seconds: (performance.now() - started) / 1000 };
}
