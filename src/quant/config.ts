// BitsAndBytesConfig: Transformers' 4-bit loading options, camelCased, with its
// defaults (FP4, no double quant, f32 compute: not the QLoRA paper's choice, which the
// CLI's qlora method sets explicitly), and the quantization_config JSON Transformers
// writes into config.json.
import { ConfigError, FormatError } from '../errors.js';
import type { QuantType } from './types.js';

export type ComputeDtype = 'float32' | 'bfloat16';

export interface BitsAndBytesConfig {
  loadIn4bit: boolean;
  bnb4bitQuantType: QuantType;
  bnb4bitUseDoubleQuant: boolean;
  bnb4bitComputeDtype: ComputeDtype;
  /** Module names kept unquantized (besides lm_head, which always is). */
  llmInt8SkipModules: string[] | null;
  /** Elements per absmax block (bitsandbytes: 64). */
  blocksize: number;
}

export const BNB_DEFAULTS: BitsAndBytesConfig = {
  loadIn4bit: false,
  bnb4bitQuantType: 'fp4',
  bnb4bitUseDoubleQuant: false,
  bnb4bitComputeDtype: 'float32',
  llmInt8SkipModules: null,
  blocksize: 64,
};

/** The QLoRA paper's choice (Dettmers et al. 2023): NF4, double quantization, bf16 compute. */
export const QLORA_PRESET: BitsAndBytesConfig = { ...BNB_DEFAULTS, loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true, bnb4bitComputeDtype: 'bfloat16' };

export const BLOCKSIZES = [32, 64, 128, 256, 512, 1024, 2048, 4096];

/** `BitsAndBytesConfig({ ... })`: Transformers' defaults, validated. */
export function BitsAndBytesConfig(opts: Partial<BitsAndBytesConfig> = {}): BitsAndBytesConfig {
  const c: BitsAndBytesConfig = { ...BNB_DEFAULTS, ...opts };
  if (c.bnb4bitQuantType !== 'nf4' && c.bnb4bitQuantType !== 'fp4') {
    throw new ConfigError(`BitsAndBytesConfig.bnb4bitQuantType ${JSON.stringify(c.bnb4bitQuantType)} is invalid`, 'use "nf4" or "fp4"');
  }
  if (c.bnb4bitComputeDtype !== 'float32' && c.bnb4bitComputeDtype !== 'bfloat16') {
    throw new ConfigError(`BitsAndBytesConfig.bnb4bitComputeDtype ${JSON.stringify(c.bnb4bitComputeDtype)} is invalid`, 'use "float32" or "bfloat16"');
  }
  if (!BLOCKSIZES.includes(c.blocksize)) throw new ConfigError(`BitsAndBytesConfig.blocksize ${c.blocksize} is invalid`, `use one of ${BLOCKSIZES.join(', ')}`);
  return c;
}

/** quantization_config as Transformers' BitsAndBytesConfig.to_dict() writes it. */
export function bnbConfigToHf(c: BitsAndBytesConfig): Record<string, unknown> {
  return {
    _load_in_4bit: c.loadIn4bit,
    _load_in_8bit: false,
    bnb_4bit_compute_dtype: c.bnb4bitComputeDtype,
    bnb_4bit_quant_storage: 'uint8',
    bnb_4bit_quant_type: c.bnb4bitQuantType,
    bnb_4bit_use_double_quant: c.bnb4bitUseDoubleQuant,
    llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false,
    llm_int8_skip_modules: c.llmInt8SkipModules,
    llm_int8_threshold: 6.0,
    load_in_4bit: c.loadIn4bit,
    load_in_8bit: false,
    quant_method: 'bitsandbytes',
  };
}

/** Reads config.json's quantization_config (4-bit bitsandbytes only). */
export function bnbConfigFromHf(json: unknown, file: string): BitsAndBytesConfig {
  if (json === null || typeof json !== 'object') throw new FormatError(`${file}: quantization_config must be an object`, 'fix or remove quantization_config in config.json');
  const j = json as Record<string, unknown>;
  if (j['quant_method'] !== 'bitsandbytes' || (j['load_in_4bit'] !== true && j['_load_in_4bit'] !== true)) {
    throw new FormatError(`${file}: quantization_config is ${JSON.stringify(j['quant_method'])} ${j['load_in_8bit'] === true ? '8-bit' : ''}; only bitsandbytes 4-bit is supported`,
      'load the unquantized model, or quantize it with ftune quantize');
  }
  const skip = j['llm_int8_skip_modules'];
  return BitsAndBytesConfig({
    loadIn4bit: true,
    bnb4bitQuantType: (j['bnb_4bit_quant_type'] ?? 'fp4') as QuantType,
    bnb4bitUseDoubleQuant: j['bnb_4bit_use_double_quant'] === true,
    bnb4bitComputeDtype: j['bnb_4bit_compute_dtype'] === 'bfloat16' ? 'bfloat16' : 'float32',
    llmInt8SkipModules: Array.isArray(skip) ? skip.map(String) : null,
  });
}
