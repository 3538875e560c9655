// TrainingArguments: Transformers' names in camelCase, its defaults, and a pure
// resolve() that checks every field (errors name the field and the allowed values).
import { ConfigError } from '../errors.js';
import { parseSchedulerType, type SchedulerType } from './schedule.js';
import type { OptimizerName } from './optim.js';

export type IntervalStrategy = 'no' | 'steps' | 'epoch';

export interface TrainingArguments {
  /** Where checkpoints (checkpoint-N/) and the final model or adapter go. */
  outputDir: string;
  perDeviceTrainBatchSize: number;
  perDeviceEvalBatchSize: number;
  /** Micro-batches per optimizer step. */
  gradientAccumulationSteps: number;
  numTrainEpochs: number;
  /** > 0 overrides numTrainEpochs. */
  maxSteps: number;
  learningRate: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  optim: OptimizerName;
  lrSchedulerType: SchedulerType;
  /** cosine_with_min_lr: final rate as a fraction of learningRate. */
  minLrRate: number;
  warmupSteps: number;
  warmupRatio: number;
  /** Clip the global gradient norm to this (0 = off). */
  maxGradNorm: number;
  loggingSteps: number;
  evalStrategy: IntervalStrategy;
  /** Defaults to loggingSteps. */
  evalSteps: number | undefined;
  saveStrategy: IntervalStrategy;
  saveSteps: number;
  /** Keep at most this many checkpoints (the best one is never deleted). */
  saveTotalLimit: number | undefined;
  loadBestModelAtEnd: boolean;
  /** "loss" / "eval_loss" or another eval metric name. */
  metricForBestModel: string;
  greaterIsBetter: boolean;
  seed: number;
  /** bf16 matmul inputs (f32 accumulation, f32 master weights). */
  bf16: boolean;
  gradientCheckpointing: boolean;
  /** A checkpoint dir, or "latest" for the newest under outputDir. */
  resumeFromCheckpoint: string | undefined;
}

export const TRAINING_DEFAULTS: Omit<TrainingArguments, 'outputDir'> = {
  perDeviceTrainBatchSize: 8,
  perDeviceEvalBatchSize: 8,
  gradientAccumulationSteps: 1,
  numTrainEpochs: 3,
  maxSteps: -1,
  learningRate: 5e-5,
  weightDecay: 0,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-8,
  optim: 'adamw',
  lrSchedulerType: 'linear',
  minLrRate: 0.1,
  warmupSteps: 0,
  warmupRatio: 0,
  maxGradNorm: 1,
  loggingSteps: 500,
  evalStrategy: 'no',
  evalSteps: undefined,
  saveStrategy: 'steps',
  saveSteps: 500,
  saveTotalLimit: undefined,
  loadBestModelAtEnd: false,
  metricForBestModel: 'loss',
  greaterIsBetter: false,
  seed: 42,
  bf16: false,
  gradientCheckpointing: false,
  resumeFromCheckpoint: undefined,
};

const STRATEGIES: readonly IntervalStrategy[] = ['no', 'steps', 'epoch'];

function need(ok: boolean, field: string, value: unknown, allowed: string): void {
  if (!ok) throw new ConfigError(`TrainingArguments.${field} = ${JSON.stringify(value)} is invalid`, `${field} must be ${allowed}`);
}

const posInt = (v: number): boolean => Number.isInteger(v) && v > 0;
const nonNeg = (v: number): boolean => Number.isFinite(v) && v >= 0;

/** Fills defaults and validates. */
export function resolveTrainingArguments(input: Partial<TrainingArguments> & { outputDir: string }): TrainingArguments {
  const a: TrainingArguments = { ...TRAINING_DEFAULTS, ...input };
  need(typeof a.outputDir === 'string' && a.outputDir !== '', 'outputDir', a.outputDir, 'a directory path');
  need(posInt(a.perDeviceTrainBatchSize), 'perDeviceTrainBatchSize', a.perDeviceTrainBatchSize, 'a positive integer');
  need(posInt(a.perDeviceEvalBatchSize), 'perDeviceEvalBatchSize', a.perDeviceEvalBatchSize, 'a positive integer');
  need(posInt(a.gradientAccumulationSteps), 'gradientAccumulationSteps', a.gradientAccumulationSteps, 'a positive integer');
  need(nonNeg(a.numTrainEpochs) && a.numTrainEpochs > 0, 'numTrainEpochs', a.numTrainEpochs, 'a number > 0');
  need(Number.isInteger(a.maxSteps), 'maxSteps', a.maxSteps, 'an integer (<= 0: use numTrainEpochs)');
  need(nonNeg(a.learningRate), 'learningRate', a.learningRate, 'a number >= 0');
  need(nonNeg(a.weightDecay), 'weightDecay', a.weightDecay, 'a number >= 0');
  need(a.adamBeta1 >= 0 && a.adamBeta1 < 1, 'adamBeta1', a.adamBeta1, 'in [0, 1)');
  need(a.adamBeta2 >= 0 && a.adamBeta2 < 1, 'adamBeta2', a.adamBeta2, 'in [0, 1)');
  need(a.adamEpsilon > 0, 'adamEpsilon', a.adamEpsilon, 'a number > 0');
  need(a.optim === 'adamw' || a.optim === 'sgd', 'optim', a.optim, '"adamw" or "sgd"');
  parseSchedulerType(a.lrSchedulerType, 'lrSchedulerType');
  need(a.minLrRate >= 0 && a.minLrRate <= 1, 'minLrRate', a.minLrRate, 'in [0, 1]');
  need(Number.isInteger(a.warmupSteps) && a.warmupSteps >= 0, 'warmupSteps', a.warmupSteps, 'a non-negative integer');
  need(a.warmupRatio >= 0 && a.warmupRatio < 1, 'warmupRatio', a.warmupRatio, 'in [0, 1)');
  need(nonNeg(a.maxGradNorm), 'maxGradNorm', a.maxGradNorm, 'a number >= 0 (0 = no clipping)');
  need(posInt(a.loggingSteps), 'loggingSteps', a.loggingSteps, 'a positive integer');
  need(STRATEGIES.includes(a.evalStrategy), 'evalStrategy', a.evalStrategy, STRATEGIES.join(', '));
  need(STRATEGIES.includes(a.saveStrategy), 'saveStrategy', a.saveStrategy, STRATEGIES.join(', '));
  a.evalSteps ??= a.loggingSteps;
  need(posInt(a.evalSteps), 'evalSteps', a.evalSteps, 'a positive integer');
  need(posInt(a.saveSteps), 'saveSteps', a.saveSteps, 'a positive integer');
  need(a.saveTotalLimit === undefined || posInt(a.saveTotalLimit), 'saveTotalLimit', a.saveTotalLimit, 'a positive integer or unset');
  need(Number.isInteger(a.seed), 'seed', a.seed, 'an integer');
  if (a.loadBestModelAtEnd) {
    need(a.evalStrategy !== 'no', 'evalStrategy', a.evalStrategy, '"steps" or "epoch" when loadBestModelAtEnd is set');
    need(a.saveStrategy === a.evalStrategy, 'saveStrategy', a.saveStrategy, `equal to evalStrategy ("${a.evalStrategy}") when loadBestModelAtEnd is set`);
    if (a.evalStrategy === 'steps') need(a.saveSteps % a.evalSteps === 0, 'saveSteps', a.saveSteps, `a multiple of evalSteps (${a.evalSteps}) when loadBestModelAtEnd is set`);
  }
  return a;
}

/**
 * `TrainingArguments({ ... })`: the Transformers constructor, camelCased; fills the
 * defaults and validates (same as resolveTrainingArguments).
 */
export function TrainingArguments(input: Partial<TrainingArguments> & { outputDir: string }): TrainingArguments {
  return resolveTrainingArguments(input);
}
