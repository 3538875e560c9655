// llama2.c -> Hugging Face conversion as pure functions: config.json, generation_config.json,
// tensors (HF names and rotate_half q/k), tokenizer.json, tokenizer_config.json and
// special_tokens_map.json objects. Writing them to disk (safetensors, JSON) is the CLI's job.
import {
  LLAMA2C_SPECIAL_TOKENS_MAP, llama2cTokenizerConfig, llama2cTokenizerToHf, readLlama2cTokenizer,
} from './llama2c-tokenizer.js';
import { readLlama2cCheckpoint, type Llama2cConfig, type NamedTensor } from './llama2c.js';

/** config.json for a llama2.c model (LlamaForCausalLM; run.c's eps 1e-5 and theta 10000). */
export function llama2cHfConfig(c: Llama2cConfig): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: c.vocabSize,
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    head_dim: c.dim / c.nHeads,
    max_position_embeddings: c.seqLen,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    rope_scaling: null,
    hidden_act: 'silu',
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    tie_word_embeddings: c.sharedClassifier,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: null,
    initializer_range: 0.02,
    pretraining_tp: 1,
    use_cache: true,
    torch_dtype: 'float32',
  };
}

/** generation_config.json: llama2.c ids (BOS 1, EOS 2), greedy by default as run.c -t 0. */
export function llama2cGenerationConfig(): Record<string, unknown> {
  return { bos_token_id: 1, eos_token_id: 2, do_sample: false };
}

export interface Llama2cConversion {
  config: Record<string, unknown>;
  tensors: NamedTensor[];
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  specialTokensMap: Record<string, string>;
  generationConfig: Record<string, unknown>;
}

/** Everything an HF model directory needs, from a llama2.c checkpoint and its tokenizer file. */
export function convertLlama2c(checkpointPath: string, tokenizerPath: string): Llama2cConversion {
  const ckpt = readLlama2cCheckpoint(checkpointPath);
  const tok = readLlama2cTokenizer(tokenizerPath, ckpt.config.vocabSize);
  return {
    config: llama2cHfConfig(ckpt.config),
    tensors: ckpt.tensors,
    tokenizerJson: llama2cTokenizerToHf(tok),
    tokenizerConfig: llama2cTokenizerConfig(ckpt.config.seqLen),
    specialTokensMap: { ...LLAMA2C_SPECIAL_TOKENS_MAP },
    generationConfig: llama2cGenerationConfig(),
  };
}
