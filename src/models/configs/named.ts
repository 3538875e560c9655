// Named model configurations: the architecture fields of each model's published
// config.json on the Hugging Face Hub (the file named next to each entry), so
// `ftune estimate --model llama-2-7b` needs no download. Only what shapes memory and
// RoPE is copied: sizes, heads, vocab, tying, rope_theta, max positions, eps, token ids.
import { ConfigError } from '../../errors.js';
import { llamaConfigFromHf, type LlamaConfig } from '../llama/config.js';

type HfConfig = Readonly<Record<string, unknown>>;

const llama2 = (hidden: number, intermediate: number, layers: number, heads: number, kvHeads: number): HfConfig => ({
  model_type: 'llama', vocab_size: 32000, hidden_size: hidden, intermediate_size: intermediate, num_hidden_layers: layers,
  num_attention_heads: heads, num_key_value_heads: kvHeads, max_position_embeddings: 4096, rms_norm_eps: 1e-5,
  rope_theta: 10000, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
});

export const NAMED_CONFIGS: Readonly<Record<string, HfConfig>> = {
  // meta-llama/Llama-2-7b-hf config.json
  'llama-2-7b': llama2(4096, 11008, 32, 32, 32),
  // meta-llama/Llama-2-13b-hf config.json
  'llama-2-13b': llama2(5120, 13824, 40, 40, 40),
  // meta-llama/Llama-2-70b-hf config.json (grouped-query attention, 8 kv heads)
  'llama-2-70b': llama2(8192, 28672, 80, 64, 8),
  // meta-llama/Meta-Llama-3-8B config.json
  'llama-3-8b': {
    model_type: 'llama', vocab_size: 128256, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32,
    num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 8192, rms_norm_eps: 1e-5,
    rope_theta: 500000, tie_word_embeddings: false, bos_token_id: 128000, eos_token_id: 128001,
  },
  // mistralai/Mistral-7B-v0.1 config.json (sliding_window 4096 does not change training memory here)
  'mistral-7b': {
    model_type: 'mistral', vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32,
    num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 32768, rms_norm_eps: 1e-5,
    rope_theta: 10000, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
  },
  // Qwen/Qwen2.5-0.5B config.json (q/k/v biases are implied by model_type qwen2)
  'qwen2.5-0.5b': {
    model_type: 'qwen2', vocab_size: 151936, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24,
    num_attention_heads: 14, num_key_value_heads: 2, max_position_embeddings: 32768, rms_norm_eps: 1e-6,
    rope_theta: 1000000, tie_word_embeddings: true, bos_token_id: 151643, eos_token_id: 151643,
  },
  // TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T config.json
  'tinyllama-1.1b': {
    model_type: 'llama', vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22,
    num_attention_heads: 32, num_key_value_heads: 4, max_position_embeddings: 2048, rms_norm_eps: 1e-5,
    rope_theta: 10000, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
  },
  // HuggingFaceTB/SmolLM2-135M config.json
  'smollm2-135m': {
    model_type: 'llama', vocab_size: 49152, hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30,
    num_attention_heads: 9, num_key_value_heads: 3, max_position_embeddings: 8192, rms_norm_eps: 1e-5,
    rope_theta: 100000, tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 0,
  },
};

/** The names `namedConfig` accepts. */
export const CONFIG_NAMES: readonly string[] = Object.keys(NAMED_CONFIGS);

/** The parsed configuration of a named model (throws a ConfigError for an unknown name). */
export function namedConfig(name: string): LlamaConfig {
  const json = NAMED_CONFIGS[name.toLowerCase()];
  if (json === undefined) throw new ConfigError(`model name ${JSON.stringify(name)} is not known`, `use one of: ${CONFIG_NAMES.join(', ')}, or pass a model directory or a config.json path`);
  return llamaConfigFromHf({ ...json }, `${name} (named config)`);
}
