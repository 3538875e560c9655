// LoraLinear: wraps any linear base (dense Linear now, a 4-bit layer for QLoRA) and adds
// scaling * B(A(dropout(x))) per active adapter, as PEFT's lora.Linear (tuners/lora/
// layer.py): fields base_layer, lora_A.<adapter>, lora_B.<adapter> give PEFT's parameter
// paths. The layer only calls base_layer.forward(), never reads its weight, so any base
// works; how an adapter computes is a strategy object (LoraVariant), not a subclass.
import type { Backend, FTensor } from '../backend/backend.js';
import type { Ops } from '../autograd/ops.js';
import type { LowRankBase } from '../autograd/lora-linear.js';
import { ConfigError } from '../errors.js';
import { Linear } from '../nn/layers.js';
import { Linear4bit } from '../nn/linear4bit.js';
import { Module } from '../nn/module.js';
import { scope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import type { Rng } from '../util/rng.js';
import type { LoraInit } from './config.js';

/** What LoRA needs from the layer it wraps. */
export interface LoraBase extends Module {
  readonly inFeatures: number; // K
  readonly outFeatures: number; // N
  // x (M, K) -> (M, N)
  forward(ops: Ops, x: FTensor): FTensor;
}

/** A base that merges a dense update itself (e.g. 4-bit: dequantize, add, requantize). */
export interface MergeableBase {
  // delta (N, K) f32: W += scale * delta
  addDeltaWeight(delta: Tensor<'f32'>, scale: number, backend: Backend): void;
}

/** One adapter's hyper-parameters in one layer (rank/alpha after rank/alpha patterns). */
export interface LoraAdapterSpec {
  r: number;
  alpha: number;
  /** alpha / r, or alpha / sqrt(r) with rsLoRA. */
  scaling: number;
  dropout: number;
  init: LoraInit;
}

/** A LoRA variant: how its branch adds to the base output and the dense update it equals. */
export interface LoraVariant {
  // x (M, K), result (M, N) -> (M, N)
  forward(ops: Ops, layer: LoraLinear, adapter: string, x: FTensor, result: FTensor): FTensor;
  /**
   * base(x) plus this adapter's branch as one fused op, or undefined where the variant
   * cannot fuse over this base (the layer then runs base and forward() separately).
   */
  // x (M, K) -> (M, N)
  fusedForward?(ops: Ops, layer: LoraLinear, adapter: string, x: FTensor): FTensor | undefined;
  // -> (N, K) f32, unscaled: merge adds spec.scaling times this
  deltaWeight(backend: Backend, layer: LoraLinear, adapter: string): Tensor<'f32'>;
}

/** Plain LoRA (Hu et al. 2021): y = base(x) + scaling * B(A(dropout(x))); delta = B @ A. */
export const PLAIN_LORA: LoraVariant = {
  forward(ops, layer, adapter, x, result) {
    const { a, b, spec } = layer.adapter(adapter);
    const h = a.forward(ops, ops.dropout(x, spec.dropout));
    return ops.addScaled(result, b.forward(ops, h), spec.scaling);
  },
  fusedForward(ops, layer, adapter, x) {
    const base = lowRankBase(ops, layer.base_layer);
    if (base === undefined) return undefined;
    const { a, b, spec } = layer.adapter(adapter);
    return ops.loraLinear(x, base, { a: a.weight, b: b.weight, scaling: spec.scaling, dropout: spec.dropout });
  },
  deltaWeight(backend, layer, adapter) {
    const { a, b } = layer.adapter(adapter);
    return backend.matmul(b.weight, a.weight); // (N, r) @ (r, K)
  },
};

/** The base as the fused op sees it: a frozen dense or 4-bit Linear; undefined for others. */
function lowRankBase(ops: Ops, base: LoraBase): LowRankBase | undefined {
  if (base instanceof Linear) return ops.tape?.tracks(base.weight) === true ? undefined : { kind: 'dense', weight: base.weight, bias: base.bias };
  if (base instanceof Linear4bit) return { kind: '4bit', quant: base.quant, bias: base.bias, computeDtype: base.computeDtype };
  return undefined;
}

// w (rows, cols) f32 filled U(-1/sqrt(cols), 1/sqrt(cols)): torch kaiming_uniform_(a=sqrt(5)),
// gain sqrt(2 / (1 + 5)) times sqrt(3 / fan_in) = 1 / sqrt(fan_in).
function kaimingUniform(rows: number, cols: number, rng: Rng): Tensor<'f32'> {
  const t = Tensor.zeros([rows, cols], 'f32', 'weights');
  const bound = 1 / Math.sqrt(cols);
  for (let i = 0; i < t.size; i++) t.data[i] = (2 * rng.next() - 1) * bound;
  return t;
}

function isMergeable(base: LoraBase): base is LoraBase & MergeableBase {
  return 'addDeltaWeight' in base && typeof base.addDeltaWeight === 'function';
}

// w (N, K) f32|bf16 += scale * delta (N, K), rounded as PEFT computes it: the scaled delta
// in f32 first, then the f32 sum; bf16 weights add in f32 and round to bf16 once.
function addToDense(layer: Linear, delta: Tensor<'f32'>, scale: number, backend: Backend): void {
  const w = layer.weight;
  if (w.dtype === 'f32') {
    const d = w.data;
    for (let i = 0; i < d.length; i++) d[i] = (d[i] ?? 0) + Math.fround(scale * (delta.data[i] ?? 0));
    return;
  }
  if (w.dtype !== 'bf16') throw new ConfigError(`cannot merge LoRA into a ${w.dtype} weight`, 'merge into an f32 or bf16 base');
  scope(() => {
    const wf = backend.cast(w, 'f32');
    for (let i = 0; i < wf.size; i++) wf.data[i] = (wf.data[i] ?? 0) + Math.fround(scale * (delta.data[i] ?? 0));
    w.data.set(backend.cast(wf, 'bf16').data);
  });
}

export class LoraLinear extends Module {
  base_layer: LoraBase;
  lora_A: Record<string, Linear> = {};
  lora_B: Record<string, Linear> = {};
  readonly #specs = new Map<string, LoraAdapterSpec>();
  readonly #variant: LoraVariant;
  #active: string[] = [];
  #merged: string[] = [];
  /** Adapters off: base output only. */
  disabled = false;
  /**
   * The first active adapter over a frozen dense or 4-bit base runs fused with it
   * (Ops.loraLinear); false forces the unfused ops (the reference the fused op is tested on).
   */
  fuse = true;

  constructor(base: LoraBase, variant: LoraVariant = PLAIN_LORA) {
    super();
    this.base_layer = base;
    this.#variant = variant;
  }

  get inFeatures(): number {
    return this.base_layer.inFeatures;
  }
  get outFeatures(): number {
    return this.base_layer.outFeatures;
  }
  get adapterNames(): string[] {
    return [...this.#specs.keys()];
  }
  get activeAdapters(): readonly string[] {
    return this.#active;
  }
  get mergedAdapters(): readonly string[] {
    return this.#merged;
  }

  /** The adapter's A (r, K), B (N, r) and hyper-parameters. */
  adapter(name: string): { a: Linear; b: Linear; spec: LoraAdapterSpec } {
    const a = this.lora_A[name];
    const b = this.lora_B[name];
    const spec = this.#specs.get(name);
    if (a === undefined || b === undefined || spec === undefined) {
      throw new ConfigError(`this layer has no adapter ${JSON.stringify(name)}`, `adapters here: ${this.adapterNames.join(', ') || 'none'}`);
    }
    return { a, b, spec };
  }

  /** Adds adapter `name`: A per init (kaiming-uniform or N(0, 1/r)), B zero (kaiming-uniform with init false). */
  addAdapter(name: string, spec: LoraAdapterSpec, rng: Rng): void {
    const { r } = spec;
    const [k, n] = [this.inFeatures, this.outFeatures];
    let a: Tensor<'f32'>;
    if (spec.init === 'gaussian') {
      a = Tensor.from([r, k], 'f32', rng.normals(r * k, 1 / r), 'weights');
    } else {
      a = kaimingUniform(r, k, rng);
    }
    const b = spec.init === false ? kaimingUniform(n, r, rng) : Tensor.zeros([n, r], 'f32', 'weights');
    this.lora_A[name]?.releaseParameters();
    this.lora_B[name]?.releaseParameters();
    this.lora_A[name] = new Linear(a);
    this.lora_B[name] = new Linear(b);
    this.#specs.set(name, { ...spec });
  }

  deleteAdapter(name: string): void {
    if (this.#merged.includes(name)) throw new ConfigError(`adapter ${JSON.stringify(name)} is merged`, 'unmerge() before deleting it');
    this.lora_A[name]?.releaseParameters();
    this.lora_B[name]?.releaseParameters();
    delete this.lora_A[name];
    delete this.lora_B[name];
    this.#specs.delete(name);
    this.#active = this.#active.filter((a) => a !== name);
  }

  /** Makes these adapters (the ones this layer has) the active ones. */
  setActive(names: readonly string[]): void {
    this.#active = names.filter((n) => this.#specs.has(n));
  }

  // x (M, K) -> (M, N): base(x) plus every active, unmerged adapter's branch.
  // The first active adapter fuses with the base where the variant can; the others (and
  // every adapter where it cannot) add their branches to that output one by one.
  forward(ops: Ops, x: FTensor): FTensor {
    if (this.disabled || this.#merged.length > 0) return this.base_layer.forward(ops, x);
    const [first, ...rest] = this.#active;
    const fused = this.fuse && first !== undefined ? this.#variant.fusedForward?.(ops, this, first, x) : undefined;
    let y = fused ?? this.base_layer.forward(ops, x);
    for (const name of fused === undefined ? this.#active : rest) y = this.#variant.forward(ops, this, name, x, y);
    return y;
  }

  // -> (N, K) f32: scaling * B @ A of one adapter, a fresh activation.
  deltaWeight(backend: Backend, name: string): Tensor<'f32'> {
    const d = this.#variant.deltaWeight(backend, this, name);
    const s = this.adapter(name).spec.scaling;
    for (let i = 0; i < d.size; i++) d.data[i] = (d.data[i] ?? 0) * s;
    return d;
  }

  #addDelta(backend: Backend, name: string, sign: 1 | -1): void {
    const base = this.base_layer;
    scope(() => {
      const delta = this.#variant.deltaWeight(backend, this, name);
      const scale = sign * this.adapter(name).spec.scaling;
      if (isMergeable(base)) base.addDeltaWeight(delta, scale, backend);
      else if (base instanceof Linear) addToDense(base, delta, scale, backend);
      else throw new ConfigError(`cannot merge LoRA into a ${base.constructor.name} base layer`, 'run with the adapter unmerged, or merge into a dense (f32/bf16) base');
    });
  }

  /** W += scaling * B @ A for each active adapter not merged yet. */
  merge(backend: Backend): void {
    for (const name of this.#active) {
      if (this.#merged.includes(name)) continue;
      this.#addDelta(backend, name, 1);
      this.#merged.push(name);
    }
  }

  /** Undoes merge(), last merged first. */
  unmerge(backend: Backend): void {
    while (this.#merged.length > 0) {
      const name = this.#merged.pop() ?? '';
      this.#addDelta(backend, name, -1);
    }
  }

  /** Frees every adapter's tensors (not the base layer's). */
  releaseAdapters(): void {
    for (const m of [...Object.values(this.lora_A), ...Object.values(this.lora_B)]) m.releaseParameters();
    this.lora_A = {};
    this.lora_B = {};
    this.#specs.clear();
    this.#active = [];
    this.#merged = [];
  }
}
