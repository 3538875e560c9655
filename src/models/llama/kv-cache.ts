// Key/value cache for incremental decoding: per layer, k and v of shape
// (B, Smax, Hkv, D) in f32, of which the first `length` positions are filled.
import { ShapeError } from '../../errors.js';
import { Tensor } from '../../tensor/tensor.js';

export class KvCache {
  readonly batch: number;
  readonly capacity: number; // Smax
  #length = 0;
  readonly #k: Tensor<'f32'>[];
  readonly #v: Tensor<'f32'>[];

  constructor(layers: number, batch: number, capacity: number, kvHeads: number, headDim: number) {
    this.batch = batch;
    this.capacity = capacity;
    this.#k = [];
    this.#v = [];
    for (let l = 0; l < layers; l++) {
      this.#k.push(Tensor.zeros([batch, capacity, kvHeads, headDim], 'f32', 'workspace'));
      this.#v.push(Tensor.zeros([batch, capacity, kvHeads, headDim], 'f32', 'workspace'));
    }
  }

  get length(): number {
    return this.#length;
  }

  keys(layer: number): Tensor<'f32'> {
    return this.#at(this.#k, layer);
  }

  values(layer: number): Tensor<'f32'> {
    return this.#at(this.#v, layer);
  }

  /** Copies k, v (B, T, Hkv, D) into positions [length, length + T) of `layer`. */
  write(layer: number, k: Tensor<'f32'>, v: Tensor<'f32'>): void {
    const kc = this.keys(layer);
    const vc = this.values(layer);
    const [b, t, hkv, d] = k.shape;
    if (b !== this.batch || t === undefined || hkv === undefined || d === undefined || v.size !== k.size) {
      throw new ShapeError(`cache write of k [${k.shape.join(', ')}], v [${v.shape.join(', ')}] into cache [${kc.shape.join(', ')}]`);
    }
    if (this.#length + t > this.capacity) throw new ShapeError(`KV cache overflow: ${this.#length} + ${t} > ${this.capacity}`);
    const row = hkv * d;
    for (let bi = 0; bi < b; bi++) {
      const dst = (bi * this.capacity + this.#length) * row;
      kc.data.set(k.data.subarray(bi * t * row, (bi + 1) * t * row), dst);
      vc.data.set(v.data.subarray(bi * t * row, (bi + 1) * t * row), dst);
    }
  }

  /** Marks T more positions as filled (after every layer has been written). */
  advance(t: number): void {
    this.#length += t;
  }

  release(): void {
    for (const t of [...this.#k, ...this.#v]) t.release();
  }

  #at(list: Tensor<'f32'>[], layer: number): Tensor<'f32'> {
    const t = list[layer];
    if (t === undefined) throw new ShapeError(`KV cache has no layer ${layer}`);
    return t;
  }
}
