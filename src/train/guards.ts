// Training guards: stop on non-finite numbers before they reach the weights or a
// checkpoint, refuse a run whose predicted peak memory exceeds what the machine has
// (unless --force), and refuse to train into an output directory that already holds a
// model or checkpoints (unless resuming). See docs/crash-safety.md.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { ConfigError, NumericalError } from '../errors.js';
import type { FlatParams } from './params.js';

const NUMERIC_HINT = 'lower --lr, keep gradient clipping on (--max-grad-norm 1), try without --bf16, and check the data near this step; '
  + 'the last checkpoint written before this step is intact: resume from it with --resume-from-checkpoint latest';

/** The first parameter (in FlatParams order) whose gradient or value holds NaN or ±Infinity, with the element index. */
export function firstNonFinite(params: FlatParams, which: 'grads' | 'values'): { name: string; index: number; value: number } | undefined {
  for (let i = 0; i < params.tensors.length; i++) {
    const t = params.tensors[i];
    if (t === undefined) continue;
    const data = which === 'grads' ? params.gradOf(t).data : t.data;
    for (let j = 0; j < data.length; j++) {
      const x = data[j] ?? 0;
      if (!Number.isFinite(x)) return { name: params.names[i] ?? `#${i}`, index: j, value: x };
    }
  }
  return undefined;
}

/**
 * Checks one step's loss and global gradient norm before the optimizer uses them. On a
 * non-finite value, NumericalError naming the step and the first tensor that went
 * non-finite: a weight if any is (the cause), else a gradient, else the loss.
 * `step` is 1-based (the step that would have been taken).
 */
export function checkStepFinite(step: number, loss: number, gradNorm: number, params: FlatParams): void {
  if (Number.isFinite(loss) && Number.isFinite(gradNorm)) return;
  const value = firstNonFinite(params, 'values');
  const grad = firstNonFinite(params, 'grads');
  const show = (kind: string, b: typeof value): string => (b === undefined ? `every ${kind} is finite` : `first non-finite ${kind}: ${b.name}[${b.index}] = ${b.value}`);
  throw new NumericalError(`training step ${step}: loss ${loss}, gradient norm ${gradNorm}; ${show('weight', value)}; ${show('gradient', grad)}; the update was not applied`,
    step, value?.name ?? grad?.name ?? (Number.isFinite(loss) ? 'gradient norm' : 'loss'), NUMERIC_HINT);
}

/** Checks every trainable value (before a checkpoint or final save is written). */
export function checkWeightsFinite(step: number, params: FlatParams): void {
  const bad = firstNonFinite(params, 'values');
  if (bad === undefined) return;
  throw new NumericalError(`after training step ${step}: parameter ${bad.name}[${bad.index}] = ${bad.value}; nothing was saved for this step`,
    step, bad.name, NUMERIC_HINT);
}

// ---- memory guard ----------------------------------------------------------------

/** `MemAvailable` of /proc/meminfo in bytes, or undefined when the text has none. */
export function parseMemAvailable(meminfo: string): number | undefined {
  const m = /^MemAvailable:\s+(\d+)\s+kB$/m.exec(meminfo);
  return m === null ? undefined : Number(m[1]) * 1024;
}

/** Bytes a cgroup still allows: memory.max minus memory.current (v2); undefined when unlimited ("max") or unreadable. */
export function cgroupHeadroom(maxText: string | undefined, currentText: string | undefined): number | undefined {
  const max = maxText?.trim();
  if (max === undefined || max === 'max' || !/^\d+$/.test(max)) return undefined;
  const cur = Number(currentText?.trim() ?? '0');
  return Math.max(0, Number(max) - (Number.isFinite(cur) ? cur : 0));
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Memory this process may still use: MemAvailable (else os.freemem()), capped by the cgroup v2 (or v1) limit. */
export function availableMemory(): { bytes: number; source: string } {
  const host = parseMemAvailable(readText('/proc/meminfo') ?? '');
  let best = host === undefined ? { bytes: freemem(), source: 'os.freemem()' } : { bytes: host, source: 'MemAvailable in /proc/meminfo' };
  const v2 = cgroupHeadroom(readText('/sys/fs/cgroup/memory.max'), readText('/sys/fs/cgroup/memory.current'));
  const v1Limit = readText('/sys/fs/cgroup/memory/memory.limit_in_bytes');
  // cgroup v1 reports "no limit" as a huge number (about 2^63); anything past 2^60 is treated as unlimited.
  const v1 = v1Limit !== undefined && Number(v1Limit) < 2 ** 60 ? cgroupHeadroom(v1Limit, readText('/sys/fs/cgroup/memory/memory.usage_in_bytes')) : undefined;
  for (const [bytes, source] of [[v2, 'cgroup memory.max - memory.current'], [v1, 'cgroup v1 memory.limit_in_bytes - usage']] as const) {
    if (bytes !== undefined && bytes < best.bytes) best = { bytes, source };
  }
  return best;
}

export interface MemoryCheck {
  predicted: number;
  available: number;
  /** Where `available` came from (MemAvailable, cgroup, injected). */
  source: string;
  fits: boolean;
}

const gib = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`;

/**
 * Compares a predicted peak (bytes) with the memory available (measured unless injected).
 * Refuses with a ConfigError listing what lowers the peak when it does not fit, unless
 * `force`; returns the comparison otherwise.
 */
export function checkMemory(predictedBytes: number, opts: { force: boolean; available?: number; suggestions?: readonly string[] }): MemoryCheck {
  const avail = opts.available === undefined ? availableMemory() : { bytes: opts.available, source: 'given' };
  const check: MemoryCheck = { predicted: predictedBytes, available: avail.bytes, source: avail.source, fits: predictedBytes <= avail.bytes };
  if (check.fits || opts.force) return check;
  const tips = opts.suggestions ?? MEMORY_SUGGESTIONS;
  throw new ConfigError(`this run needs about ${gib(predictedBytes)} at its peak but only ${gib(avail.bytes)} is available (${avail.source})`,
    `lower the peak: ${tips.join('; ')}; or pass --force to start anyway`);
}

export const MEMORY_SUGGESTIONS: readonly string[] = [
  '--method qlora (4-bit base weights, LoRA trainable)',
  'a smaller --batch-size with more --grad-accum (same effective batch)',
  '--gradient-checkpointing (recompute layers in backward)',
  'a shorter --max-length',
];

// ---- output directory -------------------------------------------------------------

/** Files whose presence means the directory holds a saved model or adapter. */
const MODEL_FILES = ['config.json', 'model.safetensors', 'model.safetensors.index.json', 'adapter_config.json', 'adapter_model.safetensors'];

/**
 * `ftune train --output dir` never replaces a model, adapter or checkpoints the user
 * already has: such a directory is refused unless the run resumes from it.
 */
export function checkOutputDir(dir: string, opts: { resuming: boolean }): void {
  if (opts.resuming || !existsSync(dir)) return;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    throw new ConfigError(`--output ${dir} exists and is not a readable directory`, 'choose a new --output directory');
  }
  const found = names.filter((n) => MODEL_FILES.includes(n) || /^checkpoint-\d+$/.test(n)).sort();
  if (found.length === 0) return;
  throw new ConfigError(`--output ${dir} already holds a model, adapter or checkpoints (${found.slice(0, 5).join(', ')}${found.length > 5 ? ', ...' : ''})`,
    'choose a new --output directory, or pass --resume-from-checkpoint latest to continue the run that wrote it; ftune never overwrites an existing model');
}
