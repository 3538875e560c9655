// TrainerState: progress and history, saved as trainer_state.json in Transformers'
// shape (snake_case keys, sorted, log_history entries with loss / eval_loss /
// learning_rate / epoch / step), so tools that read Trainer checkpoints read ours.
import { readFileSync } from 'node:fs';
import { FormatError } from '../errors.js';
import { writeJsonFile } from '../models/save.js';

export interface TrainerState {
  globalStep: number;
  maxSteps: number;
  epoch: number;
  numTrainEpochs: number;
  logHistory: Array<Record<string, number>>;
  bestMetric: number | undefined;
  bestModelCheckpoint: string | undefined;
  bestGlobalStep: number | undefined;
  /** "eval_loss" etc.: the key compared for the best model and early stopping. */
  metricName: string;
  greaterIsBetter: boolean;
  loggingSteps: number;
  evalSteps: number;
  saveSteps: number;
  trainBatchSize: number;
  numInputTokensSeen: number;
}

export function newTrainerState(init: Omit<TrainerState, 'globalStep' | 'epoch' | 'logHistory' | 'bestMetric' | 'bestModelCheckpoint' | 'bestGlobalStep' | 'numInputTokensSeen'>): TrainerState {
  return { ...init, globalStep: 0, epoch: 0, logHistory: [], bestMetric: undefined, bestModelCheckpoint: undefined, bestGlobalStep: undefined, numInputTokensSeen: 0 };
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  }
  return v;
}

export function trainerStateToHf(s: TrainerState): Record<string, unknown> {
  return sortKeys({
    best_global_step: s.bestGlobalStep ?? null,
    best_metric: s.bestMetric ?? null,
    best_model_checkpoint: s.bestModelCheckpoint ?? null,
    epoch: s.epoch,
    eval_steps: s.evalSteps,
    global_step: s.globalStep,
    is_hyper_param_search: false,
    is_local_process_zero: true,
    is_world_process_zero: true,
    log_history: s.logHistory,
    logging_steps: s.loggingSteps,
    max_steps: s.maxSteps,
    num_input_tokens_seen: s.numInputTokensSeen,
    num_train_epochs: s.numTrainEpochs,
    save_steps: s.saveSteps,
    total_flos: 0,
    train_batch_size: s.trainBatchSize,
    trial_name: null,
    trial_params: null,
    // ftune's own fields (Transformers ignores unknown keys).
    ftune_metric_name: s.metricName,
    ftune_greater_is_better: s.greaterIsBetter,
  }) as Record<string, unknown>;
}

export function saveTrainerState(path: string, s: TrainerState): void {
  writeJsonFile(path, trainerStateToHf(s));
}

export function loadTrainerState(path: string): TrainerState {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new FormatError(`${path}: cannot read trainer state: ${(e as Error).message}`, 'the checkpoint is incomplete or corrupt; resume from an earlier checkpoint');
  }
  const num = (k: string): number => {
    const v = j[k];
    if (typeof v !== 'number') throw new FormatError(`${path}: field "${k}" must be a number`, 'the checkpoint is corrupt; resume from an earlier checkpoint');
    return v;
  };
  const opt = (k: string): number | undefined => (typeof j[k] === 'number' ? (j[k] as number) : undefined);
  const history = j['log_history'];
  if (!Array.isArray(history)) throw new FormatError(`${path}: "log_history" must be a list`, 'the checkpoint is corrupt; resume from an earlier checkpoint');
  return {
    globalStep: num('global_step'),
    maxSteps: num('max_steps'),
    epoch: num('epoch'),
    numTrainEpochs: num('num_train_epochs'),
    logHistory: history as Array<Record<string, number>>,
    bestMetric: opt('best_metric'),
    bestModelCheckpoint: typeof j['best_model_checkpoint'] === 'string' ? j['best_model_checkpoint'] : undefined,
    bestGlobalStep: opt('best_global_step'),
    metricName: typeof j['ftune_metric_name'] === 'string' ? j['ftune_metric_name'] : 'eval_loss',
    greaterIsBetter: j['ftune_greater_is_better'] === true,
    loggingSteps: num('logging_steps'),
    evalSteps: num('eval_steps'),
    saveSteps: num('save_steps'),
    trainBatchSize: num('train_batch_size'),
    numInputTokensSeen: opt('num_input_tokens_seen') ?? 0,
  };
}
