// PeftModel: a causal LM with LoRA adapters injected (PEFT's PeftModelForCausalLM over
// LoraModel). The base model's forward/generate/loss run through the LoRA layers, so
// PeftModel passes them through and the Trainer treats it like the base model. Holds
// several named adapters; one is active. Parameter names carry PEFT's
// "base_model.model." prefix.
import type { CrossEntropyResult, Ops } from '../autograd/ops.js';
import { ConfigError } from '../errors.js';
import { Linear4bit } from '../nn/linear4bit.js';
import type { GenerateOptions } from '../generate/generate.js';
import type { KvCache } from '../models/llama/kv-cache.js';
import type { LlamaForCausalLM, LossOptions } from '../models/llama/model.js';
import { Tensor as TensorClass, type Tensor } from '../tensor/tensor.js';
import { resolveLoraConfig, type LoraConfig } from './config.js';
import { asAdapterError, loadAdapterWeights, readAdapterConfig, saveAdapters, type LoadAdapterOptions, type SaveAdapterOptions } from './adapter-io.js';
import { injectAdapter } from './inject.js';
import { pyFixed } from '../io/py-json.js';
import { LoraLinear } from './lora-layer.js';
import { baseModules, replaceModuleAt } from './matching.js';
import { ModulesToSaveWrapper } from './modules-to-save.js';

/** PEFT's prefix of every parameter name: PeftModel.base_model (LoraModel).model. */
export const PEFT_PREFIX = 'base_model.model.';

export interface AdapterOptions {
  /** Seed of the Rng that initialises A (and B with initLoraWeights false). Default 0. */
  seed?: number;
}

/** Python's f"{n:,d}". */
function groupThousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export class PeftModel {
  readonly baseModel: LlamaForCausalLM;
  /** Every adapter's config, targetModules as saved. */
  readonly peftConfig: Record<string, LoraConfig> = {};
  #active: string;
  #disabled = false;
  #unloaded = false;
  readonly #inferenceOnly = new Set<string>();

  constructor(model: LlamaForCausalLM, config: Partial<LoraConfig>, adapterName = 'default', opts: AdapterOptions = {}) {
    this.baseModel = model;
    this.#active = adapterName;
    this.addAdapter(adapterName, config, opts);
  }

  get activeAdapter(): string {
    return this.#active;
  }
  get adapterNames(): string[] {
    return Object.keys(this.peftConfig);
  }
  /** Whether the adapters are switched off (base model outputs). */
  get adapterDisabled(): boolean {
    return this.#disabled;
  }

  #check(): void {
    if (this.#unloaded) throw new ConfigError('this PeftModel was unloaded (mergeAndUnload/unload)', 'use the model those calls returned');
  }

  /** [path relative to the base model, layer] of every LoRA layer. */
  loraLayers(): Array<[string, LoraLinear]> {
    return baseModules(this.baseModel).flatMap(([p, m]) => (m instanceof LoraLinear ? [[p, m] as [string, LoraLinear]] : []));
  }

  /** [path, wrapper] of every modulesToSave wrapper. */
  savedModules(): Array<[string, ModulesToSaveWrapper]> {
    return baseModules(this.baseModel).flatMap(([p, m]) => (m instanceof ModulesToSaveWrapper ? [[p, m] as [string, ModulesToSaveWrapper]] : []));
  }

  #applyActive(): void {
    for (const [, l] of this.loraLayers()) l.setActive([this.#active]);
    for (const [, w] of this.savedModules()) w.setActive([this.#active]);
  }

  /** Adds (but does not activate, unless it is the first) adapter `name`. */
  addAdapter(name: string, config: Partial<LoraConfig>, opts: AdapterOptions = {}): void {
    this.#check();
    if (name in this.peftConfig) throw new ConfigError(`adapter ${JSON.stringify(name)} already exists`, 'pick another adapter name or deleteAdapter() first');
    if (name === '' || name.includes('.') || name.includes('/')) throw new ConfigError(`adapter name ${JSON.stringify(name)} is invalid`, 'use a name without "." or "/"');
    const m = this.baseModel;
    this.peftConfig[name] = injectAdapter(m, name, resolveLoraConfig(config), { modelType: m.config.modelType, backend: m.backend, seed: opts.seed ?? 0 });
    this.#applyActive();
    if (this.#disabled) this.disableAdapter();
  }

  /** Marks an adapter as loaded for inference: it has no trainable parameters. */
  setInferenceOnly(name: string, inferenceOnly: boolean): void {
    if (inferenceOnly) this.#inferenceOnly.add(name);
    else this.#inferenceOnly.delete(name);
  }

  /** Makes `name` the active adapter (unmerging first, as PEFT does). */
  setAdapter(name: string): void {
    this.#check();
    if (!(name in this.peftConfig)) throw new ConfigError(`no adapter named ${JSON.stringify(name)}`, `adapters: ${this.adapterNames.join(', ')}`);
    this.unmerge();
    this.#active = name;
    this.#applyActive();
  }

  deleteAdapter(name: string): void {
    this.#check();
    if (name === this.#active) throw new ConfigError(`cannot delete the active adapter ${JSON.stringify(name)}`, 'setAdapter() to another adapter first');
    for (const [, l] of this.loraLayers()) if (l.adapterNames.includes(name)) l.deleteAdapter(name);
    for (const [, w] of this.savedModules()) w.deleteAdapter(name);
    delete this.peftConfig[name];
    this.#inferenceOnly.delete(name);
  }

  /** Runs the base model alone (unmerges first) until enableAdapter(). */
  disableAdapter(): void {
    this.#check();
    this.unmerge();
    this.#disabled = true;
    for (const [, l] of this.loraLayers()) l.disabled = true;
    for (const [, w] of this.savedModules()) w.disabled = true;
  }

  enableAdapter(): void {
    this.#check();
    this.#disabled = false;
    for (const [, l] of this.loraLayers()) l.disabled = false;
    for (const [, w] of this.savedModules()) w.disabled = false;
  }

  /** fn() with the adapters off (PEFT's `with model.disable_adapter():`). */
  withAdapterDisabled<T>(fn: () => T): T {
    const was = this.#disabled;
    this.disableAdapter();
    try {
      return fn();
    } finally {
      if (!was) this.enableAdapter();
    }
  }

  /** Every parameter with PEFT's names (base_model.model.<path>), adapters included. */
  namedParameters(): Array<[string, Tensor]> {
    return this.baseModel.namedParameters(PEFT_PREFIX.slice(0, -1));
  }

  /**
   * The active adapter's trainable tensors, in parameter order: lora_A/lora_B, biases per
   * `bias` ("all": every bias; "lora_only": the wrapped layers'), modulesToSave copies.
   */
  trainableParameters(): Array<[string, Tensor]> {
    this.#check();
    const name = this.#active;
    if (this.#inferenceOnly.has(name)) return [];
    const cfg = this.peftConfig[name];
    const keep = new Set<Tensor>();
    for (const [, l] of this.loraLayers()) {
      if (!l.adapterNames.includes(name)) continue;
      const { a, b } = l.adapter(name);
      keep.add(a.weight).add(b.weight);
      const base = l.base_layer;
      if (cfg?.bias === 'lora_only' && 'bias' in base && base.bias instanceof TensorClass) keep.add(base.bias);
    }
    for (const [, w] of this.savedModules()) for (const [, t] of w.modules_to_save[name]?.namedParameters() ?? []) keep.add(t);
    const all = this.namedParameters();
    if (cfg?.bias === 'all') {
      for (const [n, t] of all) if (n.endsWith('.bias') && !/\.(lora_[AB]|modules_to_save|original_module)\./.test(n)) keep.add(t);
    }
    const out: Array<[string, Tensor]> = [];
    for (const [n, t] of all) {
      if (!keep.has(t)) continue;
      keep.delete(t); // a tensor shared by two paths is listed once
      out.push([n, t]);
    }
    return out;
  }

  /** Trainable and total parameter counts (all adapters and copies counted, shared tensors once). */
  countParameters(): { trainable: number; all: number } {
    const unique = new Set(this.namedParameters().map(([, t]) => t));
    let all = 0;
    for (const t of unique) all += t.shape.reduce((a, b) => a * b, 1);
    // PEFT counts a Params4bit by the weights it stands for (two per packed byte).
    for (const [, m] of this.baseModel.namedModules()) if (m instanceof Linear4bit) all += m.weightCount;
    let trainable = 0;
    for (const [, t] of this.trainableParameters()) trainable += t.shape.reduce((a, b) => a * b, 1);
    return { trainable, all };
  }

  /** PEFT's print_trainable_parameters() line (returned, not printed). */
  printTrainableParameters(): string {
    const { trainable, all } = this.countParameters();
    return `trainable params: ${groupThousands(trainable)} || all params: ${groupThousands(all)} || trainable%: ${pyFixed((100 * trainable) / all, 4)}`;
  }

  /** Adds the active adapter's scaling * B @ A into the base weights (forward then skips the branch). */
  merge(): void {
    this.#check();
    if (this.#disabled) throw new ConfigError('cannot merge while the adapter is disabled', 'enableAdapter() first');
    for (const [, l] of this.loraLayers()) l.merge(this.baseModel.backend);
  }

  /** Subtracts merged updates again (f32 weights come back within rounding). */
  unmerge(): void {
    this.#check();
    for (const [, l] of this.loraLayers()) l.unmerge(this.baseModel.backend);
  }

  #unwrap(merge: boolean): LlamaForCausalLM {
    this.#check();
    const m = this.baseModel;
    if (merge) this.merge();
    for (const [path, l] of this.loraLayers()) {
      replaceModuleAt(m, path, l.base_layer);
      l.releaseAdapters();
    }
    for (const [path, w] of this.savedModules()) {
      const keepCopy = merge && !this.#disabled ? w.activeCopy : undefined;
      replaceModuleAt(m, path, keepCopy ?? w.original_module);
      for (const [n, copy] of Object.entries(w.modules_to_save)) if (copy !== keepCopy) w.deleteAdapter(n);
      if (keepCopy !== undefined) w.original_module.releaseParameters();
    }
    this.#unloaded = true;
    return m;
  }

  /** Merges the active adapter into the base weights and returns the plain base model. */
  mergeAndUnload(): LlamaForCausalLM {
    return this.#unwrap(true);
  }

  /** Removes every adapter without merging and returns the original base model. */
  unload(): LlamaForCausalLM {
    this.unmerge();
    return this.#unwrap(false);
  }

  /**
   * Writes a PEFT adapter directory: adapter_config.json + adapter_model.safetensors for
   * the default adapter in `dir`, every other adapter in `dir/<name>/`.
   */
  savePretrained(dir: string, opts: SaveAdapterOptions = {}): void {
    this.#check();
    saveAdapters(this, dir, opts);
  }

  /** Loads another adapter directory as adapter `name` (not activated). */
  loadAdapter(dir: string, name: string, opts: { isTrainable?: boolean } = {}): void {
    const cfg = readAdapterConfig(dir);
    asAdapterError(dir, () => this.addAdapter(name, { ...cfg, inferenceMode: opts.isTrainable !== true }));
    try {
      loadAdapterWeights(this, name, dir);
    } catch (e) {
      this.deleteAdapter(name);
      throw e;
    }
    this.setInferenceOnly(name, opts.isTrainable !== true);
  }

  /** PEFT's PeftModel.from_pretrained(base, dir): injects the saved adapter and loads its weights. */
  static fromPretrained(model: LlamaForCausalLM, dir: string, opts: LoadAdapterOptions = {}): PeftModel {
    const name = opts.adapterName ?? 'default';
    const cfg = readAdapterConfig(dir);
    const peft = asAdapterError(dir, () => new PeftModel(model, { ...cfg, inferenceMode: opts.isTrainable !== true }, name));
    try {
      loadAdapterWeights(peft, name, dir);
    } catch (e) {
      peft.unload(); // leave the base model as it was
      throw e;
    }
    peft.setInferenceOnly(name, opts.isTrainable !== true);
    return peft;
  }

  // Passthroughs so generation and the Trainer treat PeftModel like the base model.
  get config(): LlamaForCausalLM['config'] {
    return this.baseModel.config;
  }
  get backend(): LlamaForCausalLM['backend'] {
    return this.baseModel.backend;
  }
  get generationConfig(): LlamaForCausalLM['generationConfig'] {
    return this.baseModel.generationConfig;
  }
  newCache(batch: number, capacity: number): KvCache {
    return this.baseModel.newCache(batch, capacity);
  }
  // ids (B*T) -> (B, V) | (B*T, V)
  forward(ids: Int32Array, batch: number, cache: KvCache, logitsFor: 'last' | 'all' = 'last'): Tensor<'f32'> {
    this.#check();
    return this.baseModel.forward(ids, batch, cache, logitsFor);
  }
  // ids (B*T), labels (B*T) -> loss (1)
  loss(ops: Ops, ids: Int32Array, labels: Int32Array, batch: number, opts: LossOptions = {}): CrossEntropyResult {
    this.#check();
    return this.baseModel.loss(ops, ids, labels, batch, opts);
  }
  generate(inputIds: readonly number[], opts: GenerateOptions = {}): number[] {
    this.#check();
    return this.baseModel.generate(inputIds, opts);
  }
}

/** PEFT's get_peft_model: injects adapter `adapterName` (LoRA per `config`) into `model`. */
export function getPeftModel(model: LlamaForCausalLM, config: Partial<LoraConfig>, adapterName = 'default', opts: AdapterOptions = {}): PeftModel {
  return new PeftModel(model, config, adapterName, opts);
}
