// Trainer callbacks (Transformers' TrainerCallback, camelCased): hooks that observe
// training and may stop it through `control`. EarlyStoppingCallback is the one the seed
// uses. The CLI's progress bar is a callback too; library code never prints.
import { ConfigError } from '../errors.js';
import type { TrainerState } from './state.js';

export interface TrainerControl {
  shouldTrainingStop: boolean;
}

/** What one optimizer step did, for progress displays. */
export interface StepInfo {
  loss: number;
  learningRate: number;
  gradNorm: number;
  tokens: number;
  seconds: number;
  totalSteps: number;
}

export interface TrainerCallback {
  onTrainBegin?(state: TrainerState, control: TrainerControl): void;
  onStepEnd?(state: TrainerState, control: TrainerControl, step: StepInfo): void;
  onLog?(state: TrainerState, logs: Record<string, number>): void;
  onEvaluate?(state: TrainerState, control: TrainerControl, metrics: Record<string, number>): void;
  onSave?(state: TrainerState, checkpointDir: string): void;
  onTrainEnd?(state: TrainerState): void;
}

export interface EarlyStoppingOptions {
  /** Evaluations without improvement before stopping. */
  patience?: number;
  /** Minimum improvement that counts. */
  threshold?: number;
}

/**
 * Stops training after `patience` evaluations in a row whose metric (the Trainer's
 * metricForBestModel) did not improve on the best by more than `threshold`.
 */
export class EarlyStoppingCallback implements TrainerCallback {
  readonly patience: number;
  readonly threshold: number;
  #bad = 0;
  #best: number | undefined;

  constructor(opts: EarlyStoppingOptions = {}) {
    this.patience = opts.patience ?? 1;
    this.threshold = opts.threshold ?? 0;
    if (!Number.isInteger(this.patience) || this.patience < 1) throw new ConfigError(`EarlyStoppingCallback patience ${this.patience} is invalid`, 'patience must be a positive integer');
    if (!(this.threshold >= 0)) throw new ConfigError(`EarlyStoppingCallback threshold ${this.threshold} is invalid`, 'threshold must be a number >= 0');
  }

  /** Evaluations since the last improvement (restored on resume from trainer state). */
  get patienceCounter(): number {
    return this.#bad;
  }

  /** On resume, replays the evaluations already in the log history. */
  onTrainBegin(state: TrainerState, control: TrainerControl): void {
    this.#bad = 0;
    this.#best = undefined;
    for (const entry of state.logHistory) {
      if (entry[state.metricName] !== undefined) this.onEvaluate(state, control, entry);
    }
  }

  onEvaluate(state: TrainerState, control: TrainerControl, metrics: Record<string, number>): void {
    const value = metrics[state.metricName];
    if (value === undefined) {
      throw new ConfigError(`early stopping: metric ${state.metricName} is not among the evaluation metrics (${Object.keys(metrics).join(', ')})`, 'set metricForBestModel to one of those');
    }
    const improved = this.#best === undefined || (state.greaterIsBetter ? value - this.#best > this.threshold : this.#best - value > this.threshold);
    if (improved) {
      this.#best = value;
      this.#bad = 0;
    } else {
      this.#bad += 1;
      if (this.#bad >= this.patience) control.shouldTrainingStop = true;
    }
  }
}
