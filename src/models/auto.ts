// AutoModelForCausalLM: the Transformers entry point, camelCased. Reads config.json,
// picks the family from the registry, loads the weights in the requested dtype.
import { join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { nativeBackend } from '../backend/index.js';
import { ConfigError, FormatError } from '../errors.js';
import type { GenerationDefaults } from '../generate/generate.js';
import type { LlamaForCausalLM } from './llama/model.js';
import { checkpointSource, quantSourceFor, readJson, readJsonIfExists, type WeightDType } from './load.js';
import { CheckpointDir } from '../io/checkpoint-dir.js';
import { resolvePretrained, resolvePretrainedSync, type HubOptions } from '../io/hub.js';
import { bnbConfigFromHf, type BitsAndBytesConfig } from '../quant/config.js';
import { MODEL_FAMILIES } from './registry.js';

export interface FromPretrainedOptions {
  /** dtype of matmul weights and embeddings (norms stay f32). Default f32. */
  dtype?: WeightDType | 'float32' | 'bfloat16';
  /** Where the model runs (tests pass the reference backend). Default native. */
  backend?: Backend;
  /** Quantize the linear layers to 4 bits while loading (QLoRA). */
  quantizationConfig?: BitsAndBytesConfig;
}

const DTYPE_ALIASES: Record<string, WeightDType> = { f32: 'f32', float32: 'f32', bf16: 'bf16', bfloat16: 'bf16' };

export function resolveDType(value: string | undefined, field = 'dtype'): WeightDType {
  const d = DTYPE_ALIASES[value ?? 'f32'];
  if (d === undefined) throw new ConfigError(`${field} ${JSON.stringify(value)} is not supported`, 'use f32 (float32) or bf16 (bfloat16)');
  return d;
}

function numberOr(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Reads generation_config.json (if present) into GenerationDefaults. */
export function readGenerationConfig(dir: string): GenerationDefaults {
  const path = join(dir, 'generation_config.json');
  const j = readJsonIfExists(path);
  if (j === undefined) return {};
  if (j === null || typeof j !== 'object') throw new FormatError(`${path}: not a JSON object`, 'fix or delete generation_config.json');
  const g = j as Record<string, unknown>;
  const eos = g['eos_token_id'];
  const out: GenerationDefaults = {};
  if (typeof g['do_sample'] === 'boolean') out.doSample = g['do_sample'];
  const t = numberOr(g['temperature']);
  if (t !== undefined) out.temperature = t;
  const k = numberOr(g['top_k']);
  if (k !== undefined) out.topK = k;
  const p = numberOr(g['top_p']);
  if (p !== undefined) out.topP = p;
  const m = numberOr(g['max_new_tokens']);
  if (m !== undefined) out.maxNewTokens = m;
  if (typeof eos === 'number') out.eosTokenIds = [eos];
  else if (Array.isArray(eos) && eos.every((e) => typeof e === 'number')) out.eosTokenIds = eos as number[];
  return out;
}

export const AutoModelForCausalLM = {
  /**
   * Loads an HF model directory (config.json + safetensors, single or sharded), or a Hub
   * repo id (org/name[@rev]) already in the HF cache; fromPretrainedAsync downloads.
   */
  fromPretrained(nameOrDir: string, opts: FromPretrainedOptions = {}): LlamaForCausalLM {
    const dir = resolvePretrainedSync(nameOrDir);
    const configPath = join(dir, 'config.json');
    const json = readJson(configPath);
    const type = (json as { model_type?: unknown } | null)?.model_type;
    const family = typeof type === 'string' ? MODEL_FAMILIES[type] : undefined;
    if (family === undefined) {
      throw new FormatError(`${configPath}: model_type ${JSON.stringify(type)} is not supported`, `supported model types: ${Object.keys(MODEL_FAMILIES).join(', ')}`);
    }
    const config = family.parseConfig(json, configPath);
    const backend = opts.backend ?? nativeBackend;
    const ckpt = CheckpointDir.open(dir);
    const { source, close } = checkpointSource(dir, backend, resolveDType(opts.dtype), ckpt);
    const stored = (json as { quantization_config?: unknown }).quantization_config;
    const bnb = stored !== undefined && stored !== null ? bnbConfigFromHf(stored, configPath) : opts.quantizationConfig?.loadIn4bit === true ? opts.quantizationConfig : undefined;
    try {
      const quant = bnb === undefined ? undefined : quantSourceFor(ckpt, backend, bnb, stored !== undefined && stored !== null);
      const model = family.create(config, source, backend, quant);
      model.generationConfig = readGenerationConfig(dir);
      model.nameOrPath = nameOrDir;
      model.quantizationConfig = bnb;
      return model;
    } finally {
      close();
    }
  },
  /** fromPretrained that first downloads a Hub repo id into the HF cache (io/hub.ts) when it is not there. */
  async fromPretrainedAsync(nameOrDir: string, opts: FromPretrainedOptions & HubOptions = {}): Promise<LlamaForCausalLM> {
    return AutoModelForCausalLM.fromPretrained(await resolvePretrained(nameOrDir, { ...opts, kind: 'model' }), opts);
  },
};
