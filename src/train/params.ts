// Trainable parameters in flat buffers (llm.c style): every trainable tensor becomes a
// view into one f32 buffer, and its gradient and AdamW moments live at the same offsets
// in three more buffers. Zero-grad is one fill, AdamW one pass, clipping one reduction.
import type { Backend, FTensor } from '../backend/backend.js';
import { ConfigError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { native } from '../backend/native/addon.js';

export class FlatParams {
  readonly names: readonly string[];
  readonly tensors: readonly Tensor<'f32'>[];
  readonly values: Tensor<'f32'>; // (P) all trainable values
  readonly grads: Tensor<'f32'>; // (P)
  readonly m: Tensor<'f32'>; // (P) AdamW first moment
  readonly v: Tensor<'f32'>; // (P) AdamW second moment
  /** Parameters [0, decayCount) get weight decay; the rest (biases, norms) do not. */
  readonly decayCount: number;
  readonly #offsets = new Map<Tensor, number>();

  /** `noDecay(name)` picks the parameters exempt from weight decay (placed last). */
  constructor(all: ReadonlyArray<[string, Tensor]>, noDecay: (name: string) => boolean = defaultNoDecay) {
    const named = [...all.filter(([n]) => !noDecay(n)), ...all.filter(([n]) => noDecay(n))];
    const tensors: Tensor<'f32'>[] = [];
    for (const [name, t] of named) {
      if (t.dtype !== 'f32') {
        throw new ConfigError(`parameter ${name} is ${t.dtype}; trainable parameters must be f32`, 'load the model in f32 (use --bf16 for bf16 matmuls with f32 master weights)');
      }
      tensors.push(t as Tensor<'f32'>);
    }
    const total = tensors.reduce((n, t) => n + t.size, 0);
    this.names = named.map(([n]) => n);
    this.tensors = tensors;
    this.values = Tensor.zeros([total], 'f32', 'weights');
    this.grads = Tensor.zeros([total], 'f32', 'grads');
    this.m = Tensor.zeros([total], 'f32', 'optimizer');
    this.v = Tensor.zeros([total], 'f32', 'optimizer');
    let offset = 0;
    let decay = 0;
    tensors.forEach((t, i) => {
      t.adoptStorage(this.values, offset);
      this.#offsets.set(t, offset);
      offset += t.size;
      if (!noDecay(this.names[i] ?? '')) decay = offset;
    });
    this.decayCount = decay;
    // The tensors just emptied into the flat buffers (and whatever building the model
    // freed: f32 sources of bf16 or 4-bit weights) sit in the caching pool in sizes no
    // training step asks for again: give them back to the system.
    native().trimPool();
  }

  get count(): number {
    return this.values.size;
  }

  has(t: Tensor): boolean {
    return this.#offsets.has(t);
  }

  /** The gradient buffer region of parameter `t` (a view, same shape). */
  gradOf(t: Tensor): Tensor<'f32'> {
    const offset = this.#offsets.get(t);
    if (offset === undefined) throw new ConfigError('gradOf: not a trainable parameter', 'this is a bug in ftune');
    return Tensor.view(this.grads, offset, t.shape);
  }

  /** Adds one gradient contribution for parameter `t`. */
  accumulate(backend: Backend, t: Tensor, g: FTensor): void {
    backend.addScaledInPlace(this.gradOf(t), g, 1);
  }

  zeroGrad(): void {
    this.grads.data.fill(0);
  }

  /** Global L2 norm of the gradients. */
  gradNorm(backend: Backend): number {
    return Math.sqrt(backend.sumSquares(this.grads));
  }
}

/** Transformers' default: no weight decay on biases and normalization weights. */
export function defaultNoDecay(name: string): boolean {
  return name.endsWith('.bias') || /(norm|layernorm)\.weight$/.test(name);
}
