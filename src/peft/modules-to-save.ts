// modules_to_save: a module trained in full next to the adapters (PEFT's
// ModulesToSaveWrapper, utils/other.py). Fields original_module and
// modules_to_save.<adapter> give PEFT's parameter paths; the active copy answers forward()
// and `.weight` (the model reads lm_head.weight / embed_tokens.weight directly).
import type { Backend, FTensor } from '../backend/backend.js';
import type { Ops } from '../autograd/ops.js';
import { ConfigError } from '../errors.js';
import { Embedding, Linear, RMSNorm } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';

export type SavableModule = Linear | Embedding | RMSNorm;

export function isSavable(m: Module): m is SavableModule {
  return m instanceof Linear || m instanceof Embedding || m instanceof RMSNorm;
}

/** An f32 persistent copy (trainable parameters are f32). */
function copyF32(t: Tensor, backend: Backend): Tensor<'f32'> {
  if (t.dtype === 'f32') return Tensor.from(t.shape, 'f32', t.data, 'weights');
  return backend.cast(t, 'f32').persist('weights');
}

function cloneModule(m: SavableModule, backend: Backend): SavableModule {
  if (m instanceof Linear) return new Linear(copyF32(m.weight, backend), m.bias === undefined ? undefined : copyF32(m.bias, backend));
  if (m instanceof Embedding) return new Embedding(copyF32(m.weight, backend));
  return new RMSNorm(copyF32(m.weight, backend), m.eps);
}

export class ModulesToSaveWrapper extends Module {
  original_module: SavableModule;
  modules_to_save: Record<string, SavableModule> = {};
  #active: string | undefined;
  /** Adapters off: the original module answers. */
  disabled = false;

  constructor(original: SavableModule) {
    super();
    this.original_module = original;
  }

  get adapterNames(): string[] {
    return Object.keys(this.modules_to_save);
  }

  /** A trainable f32 copy of the original for adapter `name`. */
  addAdapter(name: string, backend: Backend): void {
    this.modules_to_save[name]?.releaseParameters();
    this.modules_to_save[name] = cloneModule(this.original_module, backend);
  }

  deleteAdapter(name: string): void {
    this.modules_to_save[name]?.releaseParameters();
    delete this.modules_to_save[name];
    if (this.#active === name) this.#active = undefined;
  }

  setActive(names: readonly string[]): void {
    this.#active = names.find((n) => n in this.modules_to_save);
  }

  /** The copy of the active adapter, if any. */
  get activeCopy(): SavableModule | undefined {
    return this.#active === undefined ? undefined : this.modules_to_save[this.#active];
  }

  /** The module that runs now. */
  get current(): SavableModule {
    return (this.disabled ? undefined : this.activeCopy) ?? this.original_module;
  }

  get weight(): Tensor {
    return this.current.weight;
  }
  get bias(): FTensor | undefined {
    const m = this.current;
    return m instanceof Linear ? m.bias : undefined;
  }
  get eps(): number {
    const m = this.current;
    if (m instanceof RMSNorm) return m.eps;
    throw new ConfigError('eps asked of a wrapped module that is not an RMSNorm', 'this is a bug in ftune');
  }
  get inFeatures(): number {
    const m = this.current;
    return m instanceof Linear ? m.inFeatures : 0;
  }
  get outFeatures(): number {
    const m = this.current;
    return m instanceof Linear ? m.outFeatures : 0;
  }

  // Linear/RMSNorm: x (N, C) -> (N, C'); Embedding: ids (N) i32 -> (N, C)
  forward(ops: Ops, x: Tensor): FTensor {
    const m = this.current;
    if (m instanceof Embedding) return m.forward(ops, x as Tensor<'i32'>);
    return m.forward(ops, x as FTensor);
  }
}
