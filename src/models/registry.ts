// The model families ftune can load, keyed by config.json's model_type (explicit
// registry, STYLE.md rule 7). Llama, Mistral and Qwen2 share one implementation: they
// differ only in config fields (biases, sliding window, rope).
import type { Backend } from '../backend/backend.js';
import { llamaConfigFromHf, type LlamaConfig } from './llama/config.js';
import { LlamaForCausalLM, type QuantSource, type WeightSource } from './llama/model.js';

export interface ModelFamily {
  parseConfig(json: unknown, file: string): LlamaConfig;
  create(config: LlamaConfig, source: WeightSource, backend: Backend, quant?: QuantSource): LlamaForCausalLM;
}

const llamaFamily: ModelFamily = {
  parseConfig: llamaConfigFromHf,
  create: (config, source, backend, quant) => new LlamaForCausalLM(config, source, backend, quant),
};

export const MODEL_FAMILIES: Readonly<Record<string, ModelFamily>> = {
  llama: llamaFamily,
  mistral: llamaFamily,
  qwen2: llamaFamily,
};
