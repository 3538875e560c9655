// From examples to batches: validation split, packing, and a deterministic DataLoader
// that right-pads each batch to its longest example (labels IGNORE_INDEX on padding).
import { ConfigError } from '../errors.js';
import { Rng } from '../util/rng.js';
import type { Example } from './dataset.js';
import { IGNORE_INDEX } from './template.js';

/** Row-major (B,T) token ids and labels of one batch. */
export interface Batch {
  /** ids (B,T), padded with the pad id. */
  inputIds: Int32Array;
  /** labels (B,T), unshifted, IGNORE_INDEX on padding and masked positions. */
  labels: Int32Array;
  batchSize: number;
  seqLen: number;
  /** Positions the loss counts after the model's shift: labels[b][t] != IGNORE_INDEX for t in 1..T-1. */
  lossTokens: number;
}

/** Fisher-Yates permutation of 0..n-1 from `rng`. */
function permutation(n: number, rng: Rng): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i] ?? 0;
    p[i] = p[j] ?? 0;
    p[j] = t;
  }
  return p;
}

/**
 * Hold out round(fraction * n) examples (at least 1) for evaluation, chosen by a seeded
 * shuffle; both parts keep the original order. Deterministic per (examples.length, seed).
 */
export function splitValidation(examples: Example[], fraction: number, seed: number): { train: Example[]; eval: Example[] } {
  if (!(fraction > 0 && fraction < 1)) {
    throw new ConfigError(`validation fraction ${fraction} is not in (0, 1)`, 'pass --val-split as a fraction such as 0.05');
  }
  const n = examples.length;
  const nEval = Math.max(1, Math.round(n * fraction));
  if (nEval >= n) {
    throw new ConfigError(`--val-split ${fraction} of ${n} examples leaves no training examples`,
      'use a smaller --val-split, more data, or a separate --eval-data file');
  }
  const held = new Set(permutation(n, new Rng(seed)).slice(0, nEval));
  return { train: examples.filter((_, i) => !held.has(i)), eval: examples.filter((_, i) => held.has(i)) };
}

/**
 * Concatenate examples (each keeps its labels) and cut the stream into rows of seqLen
 * tokens; every token is kept: the last row holds the remainder and may be shorter (the
 * DataLoader pads it). With eosId, an example that does not already end in it gets
 * eosId appended as a separator, with loss when the example's last token had loss.
 * Attention is not blocked between packed examples (TRL's "wrapped" packing).
 */
export function packExamples(examples: Example[], seqLen: number, eosId?: number): Example[] {
  if (!Number.isInteger(seqLen) || seqLen < 2) {
    throw new ConfigError(`packing length ${seqLen} is not an integer >= 2`, 'pass --max-length as a whole number of tokens');
  }
  const ids: number[] = [];
  const labels: number[] = [];
  for (const ex of examples) {
    for (let i = 0; i < ex.inputIds.length; i++) {
      ids.push(ex.inputIds[i] ?? 0);
      labels.push(ex.labels[i] ?? IGNORE_INDEX);
    }
    const last = ex.inputIds[ex.inputIds.length - 1];
    if (eosId !== undefined && ex.inputIds.length > 0 && last !== eosId) {
      ids.push(eosId);
      labels.push(ex.labels[ex.labels.length - 1] === IGNORE_INDEX ? IGNORE_INDEX : eosId);
    }
  }
  const rows: Example[] = [];
  for (let s = 0; s < ids.length; s += seqLen) {
    rows.push({ inputIds: ids.slice(s, s + seqLen), labels: labels.slice(s, s + seqLen) });
  }
  return rows;
}

/** Right-pad examples to the longest one: ids (B,T) with padId, labels (B,T) with IGNORE_INDEX. */
export function collate(examples: readonly Example[], padId: number): Batch {
  const batchSize = examples.length;
  const seqLen = examples.reduce((m, ex) => Math.max(m, ex.inputIds.length), 0);
  const inputIds = new Int32Array(batchSize * seqLen).fill(padId);
  const labels = new Int32Array(batchSize * seqLen).fill(IGNORE_INDEX);
  let lossTokens = 0;
  examples.forEach((ex, b) => {
    inputIds.set(ex.inputIds, b * seqLen);
    labels.set(ex.labels, b * seqLen);
    for (let t = 1; t < ex.labels.length; t++) if (ex.labels[t] !== IGNORE_INDEX) lossTokens++;
  });
  return { inputIds, labels, batchSize, seqLen, lossTokens };
}

export interface DataLoaderOptions {
  batchSize: number;
  shuffle: boolean;
  seed: number;
  padId: number;
  /** Drop a last batch smaller than batchSize; default false. */
  dropLast?: boolean;
}

/** Batches of examples, reshuffled per epoch from (seed, epoch) so a resumed run sees the same order. */
export class DataLoader {
  readonly #examples: readonly Example[];
  readonly #opts: Required<DataLoaderOptions>;

  constructor(examples: Example[], opts: DataLoaderOptions) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
      throw new ConfigError(`batch size ${opts.batchSize} is not a positive integer`, 'pass --batch-size as a whole number >= 1');
    }
    this.#examples = examples;
    this.#opts = { dropLast: false, ...opts };
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.#examples.length / this.#opts.batchSize;
    return this.#opts.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** Order of example indices in epoch `e` (identity without shuffle). */
  order(e: number): number[] {
    const n = this.#examples.length;
    if (!this.#opts.shuffle) return Array.from({ length: n }, (_, i) => i);
    // One independent stream per epoch: mix the epoch into the seed (golden-ratio step).
    return permutation(n, new Rng((this.#opts.seed ^ Math.imul(e + 1, 0x9e3779b9)) >>> 0));
  }

  /** All batches of epoch `e`, deterministic per (seed, e). */
  epoch(e: number): Batch[] {
    const order = this.order(e);
    const batches: Batch[] = [];
    const bs = this.#opts.batchSize;
    for (let s = 0; s < this.length * bs && s < order.length; s += bs) {
      const picked = order.slice(s, s + bs).map((i) => this.#examples[i]).filter((x): x is Example => x !== undefined);
      batches.push(collate(picked, this.#opts.padId));
    }
    return batches;
  }
}
