// Trainer: the Transformers training loop for ftune models. Full fine-tuning and LoRA
// differ only in which parameters the model calls trainable; the loop, gradient
// accumulation (token-weighted), clipping, schedules, evaluation, checkpoints with
// exact resume, early stopping and best-model loading are shared. Non-finite losses,
// gradients or weights stop training before they reach the optimizer or a checkpoint
// (guards.ts); every save is atomic (io/atomic.ts, docs/crash-safety.md).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { Ops, type CrossEntropyResult } from '../autograd/ops.js';
import type { Tape } from '../autograd/tape.js';
import { DataLoader, padIdOf, type Batch, type Example } from '../data/index.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { LossOptions } from '../models/llama/model.js';
import { copyTokenizerFiles } from '../tokenizer/files.js';
import { publishInto, removeStaleTemps } from '../io/atomic.js';
import { ConfigError } from '../errors.js';
import { scope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { resolveTrainingArguments, type TrainingArguments } from './args.js';
import type { TrainerCallback, TrainerControl } from './callbacks.js';
import { listCheckpoints, loadCheckpoint, resolveResume, rotateCheckpoints, saveCheckpoint, type RunTotals } from './checkpoint.js';
import { evaluateLoss } from './evaluate.js';
import { checkStepFinite, checkWeightsFinite } from './guards.js';
import { Optimizer } from './optim.js';
import { FlatParams } from './params.js';
import { lrMultiplier, warmupSteps, type ScheduleSpec } from './schedule.js';
import { newTrainerState, type TrainerState } from './state.js';

/** What the Trainer needs of a model: LlamaForCausalLM (full) and PeftModel (LoRA). */
export interface TrainableModel {
  backend: Backend;
  loss(ops: Ops, ids: Int32Array, labels: Int32Array, batch: number, opts: LossOptions): CrossEntropyResult;
  trainableParameters(): Array<[string, Tensor]>;
  savePretrained(dir: string): void;
}

export interface TrainerOptions {
  model: TrainableModel;
  args: Partial<TrainingArguments> & { outputDir: string };
  trainDataset: Example[];
  evalDataset?: Example[];
  /** Pads batches (its pad id, else EOS) and is saved with every checkpoint and the final model. */
  tokenizer?: Tokenizer;
  callbacks?: TrainerCallback[];
}

export interface TrainOutput {
  globalStep: number;
  trainingLoss: number;
  metrics: Record<string, number>;
}

const round4 = (x: number): number => Math.round(x * 1e4) / 1e4;

/** Seed of the dropout masks of one micro-batch: a pure function of (seed, step, micro). */
function dropoutSeed(seed: number, step: number, micro: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(step + 1, 0xc2b2ae35) ^ Math.imul(micro + 1, 0x27d4eb2f);
  h ^= h >>> 15;
  return Math.imul(h, 0x2c1b3c6d) >>> 0;
}

export class Trainer {
  readonly model: TrainableModel;
  readonly args: TrainingArguments;
  readonly trainDataset: Example[];
  readonly evalDataset: Example[] | undefined;
  readonly callbacks: TrainerCallback[];
  readonly padTokenId: number;
  readonly tokenizer: Tokenizer | undefined;
  state: TrainerState;
  #params: FlatParams | undefined;
  /** Ops option `recompute`, set with the parameters. */
  #recompute = false;

  constructor(opts: TrainerOptions) {
    this.model = opts.model;
    this.args = resolveTrainingArguments(opts.args);
    this.trainDataset = opts.trainDataset;
    this.evalDataset = opts.evalDataset;
    this.callbacks = opts.callbacks ?? [];
    this.tokenizer = opts.tokenizer;
    this.padTokenId = opts.tokenizer === undefined ? 0 : padIdOf(opts.tokenizer);
    if (this.trainDataset.length === 0) throw new ConfigError('Trainer: the training dataset is empty', 'check the data file and --max-length');
    if (this.args.evalStrategy !== 'no' && (this.evalDataset === undefined || this.evalDataset.length === 0)) {
      throw new ConfigError(`Trainer: evalStrategy is "${this.args.evalStrategy}" but there is no evaluation dataset`, 'pass evalDataset (--eval-data or --val-split) or set evalStrategy "no"');
    }
    this.state = this.#freshState(0, 0);
  }

  #freshState(maxSteps: number, epochs: number): TrainerState {
    const a = this.args;
    return newTrainerState({
      maxSteps, numTrainEpochs: epochs, metricName: a.metricForBestModel.startsWith('eval_') ? a.metricForBestModel : `eval_${a.metricForBestModel}`,
      greaterIsBetter: a.greaterIsBetter, loggingSteps: a.loggingSteps, evalSteps: a.evalSteps ?? a.loggingSteps, saveSteps: a.saveSteps,
      trainBatchSize: a.perDeviceTrainBatchSize,
    });
  }

  /** Training ops for one micro-batch (evaluation goes through evaluateLoss). */
  #ops(tape: Tape, dropout: number): Ops {
    return new Ops(this.model.backend, { tape, training: true, dropoutSeed: dropout, matmulDtype: this.args.bf16 ? 'bf16' : 'f32', recompute: this.#recompute });
  }

  /** Trains; returns the final step, the mean training loss and the final metrics. */
  train(): TrainOutput {
    const a = this.args;
    const backend = this.model.backend;
    const loader = new DataLoader(this.trainDataset, { batchSize: a.perDeviceTrainBatchSize, shuffle: true, seed: a.seed, padId: this.padTokenId });
    const stepsPerEpoch = Math.max(1, Math.floor(loader.length / a.gradientAccumulationSteps));
    const totalSteps = a.maxSteps > 0 ? a.maxSteps : Math.ceil(a.numTrainEpochs * stepsPerEpoch);
    const epochs = a.maxSteps > 0 ? Math.ceil(a.maxSteps / stepsPerEpoch) : a.numTrainEpochs;
    const schedule: ScheduleSpec = { type: a.lrSchedulerType, warmupSteps: warmupSteps(a.warmupSteps, a.warmupRatio, totalSteps), totalSteps, minLrRate: a.minLrRate };
    const params = (this.#params ??= new FlatParams(this.model.trainableParameters()));
    // Full fine-tuning (the projection weights train) recomputes RMSNorm and SiLU*up
    // outputs in backward: 16 bytes per parameter already sit in memory, activations are
    // what is left to cut. LoRA keeps them: its memory is low already and recomputing
    // costs ~2% of a step.
    this.#recompute = params.names.some((n) => /_proj\.weight$/.test(n));
    const optimizer = new Optimizer(this.#params, { name: a.optim, beta1: a.adamBeta1, beta2: a.adamBeta2, eps: a.adamEpsilon, weightDecay: a.weightDecay });
    let totals: RunTotals = { lossSinceLog: 0, stepsSinceLog: 0, lossTotal: 0, stepsTotal: 0 };
    this.state = this.#freshState(totalSteps, epochs);
    if (a.resumeFromCheckpoint !== undefined) {
      const restored = loadCheckpoint(resolveResume(a.resumeFromCheckpoint, a.outputDir), optimizer);
      this.state = { ...restored.state, maxSteps: totalSteps, numTrainEpochs: epochs };
      totals = restored.totals;
    }
    const control: TrainerControl = { shouldTrainingStop: false };
    for (const cb of this.callbacks) cb.onTrainBegin?.(this.state, control);
    mkdirSync(a.outputDir, { recursive: true });
    // Temp files and half-built checkpoints of a killed earlier run (never under a final name).
    removeStaleTemps(a.outputDir);
    const started = performance.now();
    const startStep = this.state.globalStep;
    let batches: Batch[] = [];
    let batchesEpoch = -1;
    let tokensSeen = 0;
    while (this.state.globalStep < totalSteps && !control.shouldTrainingStop) {
      const step = this.state.globalStep;
      const epoch = Math.floor(step / stepsPerEpoch);
      if (epoch !== batchesEpoch) {
        batches = loader.epoch(epoch);
        batchesEpoch = epoch;
      }
      const within = step % stepsPerEpoch;
      const micro = batches.slice(within * a.gradientAccumulationSteps, (within + 1) * a.gradientAccumulationSteps);
      const t0 = performance.now();
      const { loss, gradNorm, tokens } = this.#step(micro, step);
      checkStepFinite(step + 1, loss, gradNorm, params);
      const lr = a.learningRate * lrMultiplier(schedule, step);
      const clip = a.maxGradNorm > 0 && gradNorm > a.maxGradNorm ? a.maxGradNorm / (gradNorm + 1e-6) : 1;
      optimizer.update(backend, lr, clip);
      this.state.globalStep = step + 1;
      this.state.epoch = this.state.globalStep / stepsPerEpoch;
      this.state.numInputTokensSeen += tokens;
      tokensSeen += tokens;
      totals = { lossSinceLog: totals.lossSinceLog + loss, stepsSinceLog: totals.stepsSinceLog + 1, lossTotal: totals.lossTotal + loss, stepsTotal: totals.stepsTotal + 1 };
      for (const cb of this.callbacks) cb.onStepEnd?.(this.state, control, { loss, learningRate: lr, gradNorm, tokens, seconds: (performance.now() - t0) / 1000, totalSteps });
      const gs = this.state.globalStep;
      if (gs % a.loggingSteps === 0 || gs === totalSteps) {
        this.#log({ loss: round4(totals.lossSinceLog / totals.stepsSinceLog), grad_norm: gradNorm, learning_rate: lr, epoch: this.state.epoch, step: gs });
        totals = { ...totals, lossSinceLog: 0, stepsSinceLog: 0 };
      }
      const epochEnd = gs % stepsPerEpoch === 0;
      const evalNow = (a.evalStrategy === 'steps' && gs % (a.evalSteps ?? a.loggingSteps) === 0) || (a.evalStrategy === 'epoch' && epochEnd);
      let metrics: Record<string, number> | undefined;
      if (evalNow) {
        metrics = this.evaluate();
        for (const cb of this.callbacks) cb.onEvaluate?.(this.state, control, metrics);
      }
      const saveNow = (a.saveStrategy === 'steps' && gs % a.saveSteps === 0) || (a.saveStrategy === 'epoch' && epochEnd);
      if (saveNow) this.#save(optimizer, totals, schedule, metrics);
    }
    if (a.loadBestModelAtEnd && this.state.bestModelCheckpoint !== undefined) {
      loadCheckpoint(this.state.bestModelCheckpoint, optimizer);
    }
    checkWeightsFinite(this.state.globalStep, params);
    const runtime = (performance.now() - started) / 1000;
    const trainLoss = totals.stepsTotal > 0 ? totals.lossTotal / totals.stepsTotal : 0;
    const metrics = {
      train_loss: trainLoss, train_runtime: runtime, train_tokens_per_second: tokensSeen / runtime,
      train_steps_per_second: (this.state.globalStep - startStep) / runtime, epoch: this.state.epoch, step: this.state.globalStep,
    };
    this.state.logHistory.push(metrics);
    for (const cb of this.callbacks) cb.onTrainEnd?.(this.state);
    return { globalStep: this.state.globalStep, trainingLoss: trainLoss, metrics };
  }

  /** One optimizer step's forward/backward over its micro-batches; returns the mean loss. */
  #step(micro: Batch[], step: number): { loss: number; gradNorm: number; tokens: number } {
    const params = this.#params;
    if (params === undefined) throw new ConfigError('Trainer: parameters not prepared', 'this is a bug in ftune');
    const backend = this.model.backend;
    params.zeroGrad();
    const total = micro.reduce((n, b) => n + b.lossTokens, 0);
    let lossSum = 0;
    let tokens = 0;
    micro.forEach((batch, i) => {
      tokens += batch.inputIds.length;
      if (batch.lossTokens === 0) return;
      scope(() => {
        const tape = params.tape();
        const ops = this.#ops(tape, dropoutSeed(this.args.seed, step, i));
        // Token weighting: this micro-batch's loss counts lossTokens / total of the step.
        const weight = batch.lossTokens / total;
        const r = this.model.loss(ops, batch.inputIds, batch.labels, batch.batchSize, { checkpoint: this.args.gradientCheckpointing, gradScale: weight });
        lossSum += r.sum;
        tape.backward(backend, r.loss, Tensor.from([1], r.loss.dtype, [weight]), (leaf, g) => params.accumulate(backend, leaf, g));
      });
    });
    return { loss: total > 0 ? lossSum / total : 0, gradNorm: params.gradNorm(backend), tokens };
  }

  /** Loss over the evaluation set (token-weighted mean), perplexity and token accuracy. */
  evaluate(dataset: Example[] | undefined = this.evalDataset): Record<string, number> {
    if (dataset === undefined || dataset.length === 0) throw new ConfigError('evaluate: no evaluation dataset', 'pass evalDataset to the Trainer');
    const r = evaluateLoss(this.model, dataset, { batchSize: this.args.perDeviceEvalBatchSize, padId: this.padTokenId, bf16: this.args.bf16 });
    const metrics = {
      eval_loss: r.loss, eval_perplexity: r.perplexity, eval_token_accuracy: r.tokenAccuracy, eval_tokens: r.tokens,
      eval_runtime: r.seconds, eval_samples_per_second: dataset.length / r.seconds, epoch: this.state.epoch, step: this.state.globalStep,
    };
    this.#log(metrics);
    return metrics;
  }

  #log(entry: Record<string, number>): void {
    this.state.logHistory.push(entry);
    for (const cb of this.callbacks) cb.onLog?.(this.state, entry);
  }

  #save(optimizer: Optimizer, totals: RunTotals, schedule: ScheduleSpec, metrics: Record<string, number> | undefined): void {
    const a = this.args;
    const dir = join(a.outputDir, `checkpoint-${this.state.globalStep}`);
    const value = metrics?.[this.state.metricName];
    if (value !== undefined) {
      const best = this.state.bestMetric;
      if (best === undefined || (this.state.greaterIsBetter ? value > best : value < best)) {
        this.state.bestMetric = value;
        this.state.bestModelCheckpoint = dir;
        this.state.bestGlobalStep = this.state.globalStep;
      }
    }
    checkWeightsFinite(this.state.globalStep, optimizer.params);
    saveCheckpoint(dir, { saveModel: (d) => this.#writeModel(d), optimizer, state: this.state, totals, args: a, schedule: { ...schedule, step: this.state.globalStep } });
    rotateCheckpoints(a.outputDir, a.saveTotalLimit, this.state.bestModelCheckpoint);
    for (const cb of this.callbacks) cb.onSave?.(this.state, dir);
  }

  /**
   * Saves the model or adapter (what savePretrained writes) and the tokenizer files into
   * dir: written to a staging directory first, then each file renamed into place, so a
   * crash never leaves a partial file under a final name.
   */
  saveModel(dir: string = this.args.outputDir): void {
    publishInto(dir, (staging) => this.#writeModel(staging));
  }

  #writeModel(dir: string): void {
    this.model.savePretrained(dir);
    if (this.tokenizer?.dir !== undefined) copyTokenizerFiles(this.tokenizer.dir, dir);
  }

  /** checkpoint-N directories written so far. */
  checkpoints(): string[] {
    return listCheckpoints(this.args.outputDir).map((c) => c.dir);
  }
}
