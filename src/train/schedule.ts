// Learning-rate schedules, as Transformers' get_scheduler builds them: a multiplier of
// the base rate for optimizer step s (0-based; the rate used by update s is lr * f(s)).
import { ConfigError } from '../errors.js';

export type SchedulerType = 'linear' | 'cosine' | 'constant' | 'constant_with_warmup' | 'cosine_with_min_lr';
export const SCHEDULER_TYPES: readonly SchedulerType[] = ['linear', 'cosine', 'constant', 'constant_with_warmup', 'cosine_with_min_lr'];

export interface ScheduleSpec {
  type: SchedulerType;
  warmupSteps: number;
  totalSteps: number;
  /** cosine_with_min_lr: floor as a fraction of the base rate (Transformers' min_lr_rate). */
  minLrRate: number;
}

/** The multiplier f(step) of the base learning rate. */
export function lrMultiplier(spec: ScheduleSpec, step: number): number {
  const { type, warmupSteps: w, totalSteps: n } = spec;
  if (type === 'constant') return 1;
  if (step < w) return step / Math.max(1, w);
  if (type === 'constant_with_warmup') return 1;
  const progress = (step - w) / Math.max(1, n - w);
  switch (type) {
    case 'linear':
      return Math.max(0, (n - step) / Math.max(1, n - w));
    case 'cosine':
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
    case 'cosine_with_min_lr': {
      const f = 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
      return f * (1 - spec.minLrRate) + spec.minLrRate;
    }
  }
}

/** Warmup steps from an explicit count or a ratio of the total (count wins when > 0). */
export function warmupSteps(steps: number, ratio: number, total: number): number {
  if (steps > 0) return steps;
  return Math.ceil(total * ratio);
}

export function parseSchedulerType(value: string, field = 'lrSchedulerType'): SchedulerType {
  if (!SCHEDULER_TYPES.includes(value as SchedulerType)) {
    throw new ConfigError(`${field} ${JSON.stringify(value)} is not a known schedule`, `use one of: ${SCHEDULER_TYPES.join(', ')}`);
  }
  return value as SchedulerType;
}
