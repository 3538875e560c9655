// Trainable parameters in flat buffers (llm.c style): every trainable tensor becomes a
// view into a flat f32 buffer, and its gradient and AdamW moments live at the same
// offsets in three more buffers. Zero-grad is one fill, AdamW one pass, clipping one
// reduction per segment. A segment holds at most about 1 GiB of values (Node 20 caps
// one buffer at 4 GiB, and a 1.1B-parameter model has 4.4 GB of f32 values), so big
// models get several segments; a parameter never straddles two.
import type { Backend, FTensor } from '../backend/backend.js';
import { ConfigError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { native } from '../backend/native/addon.js';
import { Tape } from '../autograd/tape.js';

/** Default segment size: 2^28 f32 values (1 GiB). */
export const SEGMENT_VALUES = 2 ** 28;

/** One run of consecutive parameters [start, start + count) of the flat order. */
export interface FlatSegment {
  readonly start: number;
  readonly count: number;
  readonly values: Tensor<'f32'>; // (count)
  readonly grads: Tensor<'f32'>; // (count)
  readonly m: Tensor<'f32'>; // (count) AdamW first moment
  readonly v: Tensor<'f32'>; // (count) AdamW second moment
}

export class FlatParams {
  readonly names: readonly string[];
  readonly tensors: readonly Tensor<'f32'>[];
  readonly segments: readonly FlatSegment[];
  /** Parameters [0, decayCount) of the flat order get weight decay; the rest (biases, norms) do not. */
  readonly decayCount: number;
  readonly count: number;
  readonly #where = new Map<Tensor, { segment: FlatSegment; offset: number }>();

  /**
   * `noDecay(name)` picks the parameters exempt from weight decay (placed last);
   * `segmentValues` caps a segment's size (tests use small ones).
   */
  constructor(all: ReadonlyArray<[string, Tensor]>, noDecay: (name: string) => boolean = defaultNoDecay, segmentValues = SEGMENT_VALUES) {
    const named = [...all.filter(([n]) => !noDecay(n)), ...all.filter(([n]) => noDecay(n))];
    const tensors: Tensor<'f32'>[] = [];
    for (const [name, t] of named) {
      if (t.dtype !== 'f32') {
        throw new ConfigError(`parameter ${name} is ${t.dtype}; trainable parameters must be f32`, 'load the model in f32 (use --bf16 for bf16 matmuls with f32 master weights)');
      }
      tensors.push(t as Tensor<'f32'>);
    }
    this.names = named.map(([n]) => n);
    this.tensors = tensors;

    // Greedy split into runs of at most segmentValues (a larger parameter gets its own).
    const runs: Array<{ first: number; end: number; count: number }> = [];
    tensors.forEach((t, i) => {
      const last = runs[runs.length - 1];
      if (last !== undefined && last.count + t.size <= segmentValues) {
        last.end = i + 1;
        last.count += t.size;
      } else runs.push({ first: i, end: i + 1, count: t.size });
    });
    // Values first: each parameter moves into its segment and frees its own block.
    const values: Tensor<'f32'>[] = [];
    let start = 0;
    let decay = 0;
    for (const run of runs) {
      const flat = Tensor.zeros([run.count], 'f32', 'weights');
      let offset = 0;
      for (let i = run.first; i < run.end; i++) {
        const t = tensors[i] as Tensor<'f32'>;
        t.adoptStorage(flat, offset);
        offset += t.size;
        if (!noDecay(this.names[i] ?? '')) decay = start + offset;
      }
      values.push(flat);
      start += run.count;
    }
    // The blocks just emptied (and whatever building the model freed: f32 sources of
    // bf16 or 4-bit weights) sit in the caching pool in sizes no training step asks for
    // again: give them back to the system before the gradient and moment buffers exist,
    // so the peak never holds the old weights beside all four flat buffers.
    native().trimPool();
    start = 0;
    this.segments = runs.map((run, i) => {
      const segment: FlatSegment = {
        start, count: run.count, values: values[i] as Tensor<'f32'>,
        grads: zeroed([run.count], 'grads'),
        m: zeroed([run.count], 'optimizer'),
        v: zeroed([run.count], 'optimizer'),
      };
      let offset = 0;
      for (let j = run.first; j < run.end; j++) {
        const t = tensors[j] as Tensor<'f32'>;
        this.#where.set(t, { segment, offset });
        offset += t.size;
      }
      start += run.count;
      return segment;
    });
    this.count = start;
    this.decayCount = decay;
  }

  has(t: Tensor): boolean {
    return this.#where.has(t);
  }

  /** The gradient buffer region of parameter `t` (a view, same shape). */
  gradOf(t: Tensor): Tensor<'f32'> {
    const at = this.#where.get(t);
    if (at === undefined) throw new ConfigError('gradOf: not a trainable parameter', 'this is a bug in ftune');
    return Tensor.view(at.segment.grads, at.offset, t.shape);
  }

  /**
   * A tape watching every trainable parameter; rules that can (linear weight products,
   * embedding scatter-adds) accumulate straight into the flat gradient buffer.
   */
  tape(): Tape {
    const tape = new Tape();
    for (const t of this.tensors) tape.watch(t);
    tape.gradTarget = (t) => (this.has(t) ? this.gradOf(t) : undefined);
    return tape;
  }

  /** Adds one gradient contribution for parameter `t`. */
  accumulate(backend: Backend, t: Tensor, g: FTensor): void {
    backend.addScaledInPlace(this.gradOf(t), g, 1);
  }

  zeroGrad(): void {
    for (const s of this.segments) s.grads.data.fill(0);
  }

  /** Global L2 norm of the gradients. */
  gradNorm(backend: Backend): number {
    let sum = 0;
    for (const s of this.segments) sum += backend.sumSquares(s.grads);
    return Math.sqrt(sum);
  }
}

/**
 * Zeros written now, page by page, rather than calloc's untouched pages: the first step
 * reads these buffers before writing them (GEMM accumulate, AdamW), and a read of an
 * untouched page maps the shared zero page, so the write after it copies the page and
 * flushes the other cores' TLBs; 1 GiB of that took a medium full fine-tuning's first
 * step ~1 s longer.
 */
function zeroed(shape: number[], category: 'grads' | 'optimizer'): Tensor<'f32'> {
  const t = Tensor.empty(shape, 'f32', category);
  t.data.fill(0);
  return t;
}

/** Transformers' default: no weight decay on biases and normalization weights. */
export function defaultNoDecay(name: string): boolean {
  return name.endsWith('.bias') || /(norm|layernorm)\.weight$/.test(name);
}
