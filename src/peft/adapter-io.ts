// PEFT adapter directories (reference/formats-and-features.md §2.2): adapter_config.json
// as json.dumps(asdict(config), indent=2, sort_keys=True) with no trailing newline, and
// adapter_model.safetensors with {"format": "pt"} metadata and keys
// base_model.model.<path>.lora_A.weight [r, in] / .lora_B.weight [out, r] (adapter name
// stripped, PEFT save_and_load.py). A non-default adapter lives in <dir>/<name>/.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, FormatError } from '../errors.js';
import { writeAllSync, writeFileAtomic } from '../io/atomic.js';
import { readUtf8File } from '../io/text-file.js';
import { SafetensorsFile, writeSafetensors, type SafetensorsDType, type TensorToWrite } from '../io/safetensors.js';
import { Tensor } from '../tensor/tensor.js';
import { scope } from '../tensor/scope.js';
import type { DType } from '../tensor/dtype.js';
import { loraConfigFromHf, loraConfigToHf, type LoraConfig } from './config.js';
import type { PeftModel } from './peft-model.js';
import { pyJsonDumps } from '../io/py-json.js';

export const ADAPTER_CONFIG_NAME = 'adapter_config.json';
export const ADAPTER_WEIGHTS_NAME = 'adapter_model.safetensors';
const PREFIX = 'base_model.model.';

export interface SaveAdapterOptions {
  /** Adapters to save (default: all). */
  selectedAdapters?: string[];
}

export interface LoadAdapterOptions {
  /** Name the loaded adapter gets (default "default"). */
  adapterName?: string;
  /** Keep the adapter trainable (default false: inference only, as PEFT). */
  isTrainable?: boolean;
}

const TO_FILE: Partial<Record<DType, SafetensorsDType>> = { f32: 'F32', bf16: 'BF16', f16: 'F16' };
const FROM_FILE: Partial<Record<SafetensorsDType, DType>> = { F32: 'f32', BF16: 'bf16', F16: 'f16' };
const HINT_OTHER_BASE = 'the adapter was probably trained on another base model; check base_model_name_or_path in adapter_config.json';

const FAMILY_CLASS: Record<string, { name: string; library: string }> = {
  llama: { name: 'LlamaForCausalLM', library: 'transformers.models.llama.modeling_llama' },
  mistral: { name: 'MistralForCausalLM', library: 'transformers.models.mistral.modeling_mistral' },
  qwen2: { name: 'Qwen2ForCausalLM', library: 'transformers.models.qwen2.modeling_qwen2' },
};

function bytesOf(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.bytes);
}

function fileDType(t: Tensor, key: string): SafetensorsDType {
  const d = TO_FILE[t.dtype];
  if (d === undefined) throw new ConfigError(`cannot save ${key}: dtype ${t.dtype}`, 'adapter tensors must be f32, bf16 or f16');
  return d;
}

/**
 * Every tensor adapter `name` saves, keyed as on disk, with the model tensor it maps to:
 * LoRA A/B, biases per the config's `bias`, and modulesToSave copies.
 */
export function adapterTensors(peft: PeftModel, name: string): Map<string, Tensor> {
  const cfg = peft.peftConfig[name];
  const out = new Map<string, Tensor>();
  for (const [path, l] of peft.loraLayers()) {
    if (!l.adapterNames.includes(name)) continue;
    const { a, b } = l.adapter(name);
    out.set(`${PREFIX}${path}.lora_A.weight`, a.weight);
    out.set(`${PREFIX}${path}.lora_B.weight`, b.weight);
    if (cfg?.bias === 'lora_only') for (const [p, t] of l.base_layer.namedParameters(`${path}.base_layer`)) if (p.endsWith('.bias')) out.set(PREFIX + p, t);
  }
  if (cfg?.bias === 'all') {
    for (const [p, t] of peft.baseModel.namedParameters()) {
      if (p.endsWith('.bias') && !/\.(lora_[AB]|modules_to_save|original_module)\./.test(p)) out.set(PREFIX + p, t);
    }
  }
  for (const [path, w] of peft.savedModules()) {
    for (const [p, t] of w.modules_to_save[name]?.namedParameters(path) ?? []) out.set(PREFIX + p, t);
  }
  return out;
}

function nameOrPathOf(peft: PeftModel): string | null {
  return peft.baseModel.nameOrPath === '' ? null : peft.baseModel.nameOrPath;
}

/** adapter_config.json's exact text for this config as saved (inference_mode true). */
export function adapterConfigText(cfg: LoraConfig, modelType: string): string {
  return pyJsonDumps(loraConfigToHf({ ...cfg, inferenceMode: true }, FAMILY_CLASS[modelType]));
}

export function saveAdapters(peft: PeftModel, dir: string, opts: SaveAdapterOptions = {}): void {
  const names = opts.selectedAdapters ?? peft.adapterNames;
  for (const name of names) {
    const cfg = peft.peftConfig[name];
    if (cfg === undefined) throw new ConfigError(`savePretrained: no adapter named ${JSON.stringify(name)}`, `adapters: ${peft.adapterNames.join(', ')}`);
    const sub = name === 'default' ? dir : join(dir, name);
    mkdirSync(sub, { recursive: true });
    const tensors: TensorToWrite[] = [...adapterTensors(peft, name)].map(([key, t]) => ({ name: key, dtype: fileDType(t, key), shape: t.shape, data: bytesOf(t) }));
    writeSafetensors(join(sub, ADAPTER_WEIGHTS_NAME), tensors, { format: 'pt' });
    const text = adapterConfigText({ ...cfg, baseModelNameOrPath: nameOrPathOf(peft) ?? cfg.baseModelNameOrPath }, peft.config.modelType);
    writeFileAtomic(join(sub, ADAPTER_CONFIG_NAME), (fd) => writeAllSync(fd, Buffer.from(text, 'utf8')));
  }
}

function requireFile(dir: string, file: string, hint: string): string {
  const path = join(dir, file);
  if (!existsSync(path)) throw new FormatError(`${dir}: ${file} is missing`, hint);
  return path;
}

/** Reads and checks <dir>/adapter_config.json. */
export function readAdapterConfig(dir: string): LoraConfig {
  const path = requireFile(dir, ADAPTER_CONFIG_NAME, 'a PEFT adapter directory holds adapter_config.json and adapter_model.safetensors (saved with savePretrained)');
  const text = readUtf8File(path);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${path}: invalid JSON: ${(e as Error).message}`, 'fix or re-save the adapter');
  }
  return loraConfigFromHf(json, path);
}

// Copies a tensor's bytes from the file into `target`, converting float dtypes.
function readTensorInto(file: SafetensorsFile, key: string, target: Tensor, fileType: DType, backendCast: (t: Tensor, d: 'f32' | 'bf16') => Tensor): void {
  if (fileType === target.dtype) {
    file.readInto(key, bytesOf(target));
    return;
  }
  scope(() => {
    const raw = Tensor.zeros(target.shape, fileType);
    file.readInto(key, bytesOf(raw));
    if (target.dtype !== 'f32' && target.dtype !== 'bf16') throw new FormatError(`${file.path}: cannot load ${key} into a ${target.dtype} tensor`, 'this is a bug in ftune');
    target.data.set(backendCast(raw, target.dtype).data);
  });
}

/**
 * Loads <dir>/adapter_model.safetensors into adapter `name` (already injected). Every key
 * must map to a tensor of the adapter with the same shape, and every LoRA A/B must be
 * present: anything else is a FormatError naming the file, the key and the shapes.
 */
export function loadAdapterWeights(peft: PeftModel, name: string, dir: string): void {
  const path = requireFile(dir, ADAPTER_WEIGHTS_NAME, 'save the adapter with savePretrained (safe_serialization); adapter_model.bin is not read');
  const expected = adapterTensors(peft, name);
  const file = SafetensorsFile.open(path);
  try {
    for (const [key, info] of file.tensors) {
      const target = expected.get(key);
      if (target === undefined) {
        const example = [...expected.keys()][0] ?? 'none';
        throw new FormatError(`${path}: tensor ${key} does not belong to any adapted module of this base model (expected keys like ${example})`, HINT_OTHER_BASE);
      }
      if (info.shape.length !== target.shape.length || info.shape.some((d, i) => d !== target.shape[i])) {
        throw new FormatError(`${path}: tensor ${key} has shape [${info.shape.join(', ')}], this base model needs [${target.shape.join(', ')}]`, HINT_OTHER_BASE);
      }
      const fileType = FROM_FILE[info.dtype];
      if (fileType === undefined) throw new FormatError(`${path}: tensor ${key} has dtype ${info.dtype}`, 'adapter tensors must be F32, BF16 or F16');
      readTensorInto(file, key, target, fileType, (t, d) => peft.backend.cast(t, d));
      expected.delete(key);
    }
  } finally {
    file.close();
  }
  const missing = [...expected.keys()].filter((k) => /\.lora_[AB]\.weight$/.test(k));
  if (missing.length > 0) {
    throw new FormatError(`${path}: ${missing.length} LoRA tensors are missing, e.g. ${missing.slice(0, 3).join(', ')}`, `${HINT_OTHER_BASE}, or the file is incomplete`);
  }
}

/** Runs fn (adapter injection from a saved config) turning a target mismatch into a FormatError about `dir`. */
export function asAdapterError<T>(dir: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ConfigError) throw new FormatError(`${join(dir, ADAPTER_CONFIG_NAME)}: ${e.message.split('\nhint:')[0] ?? ''}`, `${HINT_OTHER_BASE} (${e.hint})`);
    throw e;
  }
}
