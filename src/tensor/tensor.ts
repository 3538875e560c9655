// Tensor: a shape, a dtype and native-backed storage released deterministically.
//
// Storage comes from the native allocator (64-byte aligned, outside the JS heap), so a
// multi-GB model never waits for the garbage collector. Two lifetimes (STYLE.md rule 8):
// persistent tensors (weights, grads, optimizer state) live until their owner drops them;
// activations are created inside a `scope()` and released when it ends.
import { constants } from 'node:buffer';
import { ShapeError } from '../errors.js';
import { native } from '../backend/native/addon.js';
import { BYTES_PER_ELEMENT, viewOf, type ArrayOf, type DType } from './dtype.js';
import { noteAlloc, noteFree, type MemoryCategory } from './memory.js';
import { track, untrack } from './scope.js';

/** The largest buffer Node allows (4 GiB in Node 20). */
const MAX_BUFFER_BYTES = constants.MAX_LENGTH;

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`invalid dimension ${d} in shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

export class Tensor<D extends DType = DType> {
  readonly shape: Shape;
  readonly dtype: D;
  #category: MemoryCategory;
  readonly size: number;
  #data: ArrayOf[D] | undefined;
  #buffer: ArrayBuffer | undefined;
  /** For views (reshape, view): the tensor that owns the storage. */
  readonly #owner: Tensor | undefined;

  private constructor(shape: Shape, dtype: D, category: MemoryCategory, data: ArrayOf[D], buffer: ArrayBuffer | undefined, owner?: Tensor) {
    this.shape = shape;
    this.dtype = dtype;
    this.#category = category;
    this.size = data.length;
    this.#data = data;
    this.#buffer = buffer;
    this.#owner = owner;
  }

  /** The tensor owning this one's storage: itself, or the owner of the tensor it views. */
  get root(): Tensor {
    return this.#owner?.root ?? this;
  }

  /** A zero-filled tensor in native memory. Activations join the current scope. */
  static zeros<D extends DType>(shape: Shape, dtype: D, category: MemoryCategory = 'activations'): Tensor<D> {
    return Tensor.#alloc(shape, dtype, category, true);
  }

  /** Like zeros() without clearing the memory: for outputs a kernel overwrites whole. */
  static empty<D extends DType>(shape: Shape, dtype: D, category: MemoryCategory = 'activations'): Tensor<D> {
    return Tensor.#alloc(shape, dtype, category, false);
  }

  static #alloc<D extends DType>(shape: Shape, dtype: D, category: MemoryCategory, zero: boolean): Tensor<D> {
    const n = numel(shape);
    const bytes = n * BYTES_PER_ELEMENT[dtype];
    if (bytes > MAX_BUFFER_BYTES) {
      throw new ShapeError(`a ${dtype} tensor [${shape.join(', ')}] needs ${bytes} bytes, more than one Node buffer can hold (${MAX_BUFFER_BYTES})`,
        'split the tensor (ftune keeps every tensor of a supported model under this limit; this is likely a bug or an unsupported shape)');
    }
    const buffer = native().alloc(bytes, zero);
    if (buffer === null) {
      throw new ShapeError(`out of memory allocating ${bytes} bytes for a ${dtype} tensor [${shape.join(', ')}]`,
        'use a smaller batch or sequence length, bf16 or 4-bit weights, or a machine with more memory');
    }
    noteAlloc(category, bytes);
    const t = new Tensor(shape.slice(), dtype, category, viewOf(dtype, buffer, n), buffer);
    if (category === 'activations') track(t);
    return t;
  }

  /** A tensor holding a copy of `values`. */
  static from<D extends DType>(shape: Shape, dtype: D, values: ArrayLike<number>, category: MemoryCategory = 'activations'): Tensor<D> {
    const t = Tensor.empty(shape, dtype, category);
    if (values.length !== t.size) {
      t.release();
      throw new ShapeError(`${values.length} values do not fill shape [${shape.join(', ')}] (${t.size} elements)`);
    }
    t.data.set(values);
    return t;
  }

  get data(): ArrayOf[D] {
    if (this.#data === undefined) throw new ShapeError('tensor used after release', 'this is a bug in ftune: a tensor outlived its scope');
    return this.#data;
  }

  get category(): MemoryCategory {
    return this.#category;
  }

  /**
   * Makes an activation persistent: moves its bytes to `category` in the accounting and
   * takes it out of its scope (used for weights produced by ops, e.g. dtype casts at load).
   */
  persist(category: Exclude<MemoryCategory, 'activations'>): this {
    if (this.#buffer !== undefined) {
      noteFree(this.#category, this.bytes);
      noteAlloc(category, this.bytes);
    }
    untrack(this);
    this.#category = category;
    return this;
  }

  get released(): boolean {
    return this.#data === undefined;
  }

  get bytes(): number {
    return this.size * BYTES_PER_ELEMENT[this.dtype];
  }

  /** A tensor of the same storage seen with another shape (same element count). */
  reshape(shape: Shape): Tensor<D> {
    if (numel(shape) !== this.size) throw new ShapeError(`cannot reshape [${this.shape.join(', ')}] to [${shape.join(', ')}]`);
    return new Tensor(shape.slice(), this.dtype, this.#category, this.data, undefined, this);
  }

  /**
   * Moves this tensor's values into `flat` at element `offset` and makes this tensor a
   * view of that region, freeing its own storage. Every holder of this Tensor object
   * (module fields, tapes) keeps working; the values now live in one flat buffer, so
   * zero-grad is one fill and AdamW one pass (llm.c style).
   */
  adoptStorage(flat: Tensor<D>, offset: number): void {
    if (flat.dtype !== this.dtype) throw new ShapeError(`adoptStorage: ${this.dtype} tensor into a ${flat.dtype} buffer`);
    if (offset < 0 || offset + this.size > flat.size) throw new ShapeError(`adoptStorage: ${this.size} elements at ${offset} overflow a buffer of ${flat.size}`);
    const view = flat.data.subarray(offset, offset + this.size) as ArrayOf[D];
    const src = this.data;
    new Uint8Array(view.buffer, view.byteOffset, view.byteLength).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
    this.release();
    this.#data = view;
  }

  /**
   * Gives this released tensor the storage of `from` (same dtype and shape, owning its
   * storage), leaving `from` released: a recomputed activation returns into the Tensor
   * object every holder (tape nodes, backward rules) already has (Tape.rematerialize).
   */
  takeStorage(from: Tensor<D>): void {
    if (!this.released || from.released || from.#buffer === undefined || from.dtype !== this.dtype || from.size !== this.size || this.#owner !== undefined) {
      throw new ShapeError(`takeStorage: cannot move a ${from.dtype} [${from.shape.join(', ')}] buffer into ${this.released ? 'released' : 'live'} ${this.dtype} [${this.shape.join(', ')}]`,
        'this is a bug in ftune');
    }
    if (from.#category !== this.#category) {
      noteFree(from.#category, from.bytes);
      noteAlloc(this.#category, this.bytes);
    }
    this.#data = from.#data;
    this.#buffer = from.#buffer;
    from.#data = undefined;
    from.#buffer = undefined;
  }

  /** A tensor viewing `size` elements of `flat` from `offset` (shares its storage). */
  static view<D extends DType>(flat: Tensor<D>, offset: number, shape: Shape): Tensor<D> {
    const n = numel(shape);
    if (offset < 0 || offset + n > flat.size) throw new ShapeError(`view of ${n} elements at ${offset} overflows a buffer of ${flat.size}`);
    return new Tensor(shape.slice(), flat.dtype, flat.category, flat.data.subarray(offset, offset + n) as ArrayOf[D], undefined, flat);
  }

  /** Frees the storage now. Views made by reshape() share it and must not outlive it. */
  release(): void {
    if (this.#data === undefined) return;
    if (this.#buffer !== undefined) {
      noteFree(this.#category, this.bytes);
      native().release(this.#buffer);
    }
    this.#data = undefined;
    this.#buffer = undefined;
  }
}
