// Benchmark model shapes, the same as the PyTorch anchor's (../shared/bench/
// torch_anchor.py PRESETS), so ftune and PyTorch are measured on identical work.
import { llamaConfigFromHf, type LlamaConfig } from '../models/llama/config.js';
import { ConfigError } from '../errors.js';

export interface Preset {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  seq: number;
  tie: boolean;
}

export const PRESETS: Readonly<Record<string, Preset>> = {
  // llama2.c stories260K shape (tied classifier)
  tiny: { vocab: 512, hidden: 64, layers: 5, heads: 8, kvHeads: 4, intermediate: 172, seq: 256, tie: true },
  // llama2.c stories15M shape
  small: { vocab: 32000, hidden: 288, layers: 6, heads: 6, kvHeads: 6, intermediate: 768, seq: 256, tie: true },
  // ~110M (tied), GPT-2-small-sized Llama
  medium: { vocab: 32000, hidden: 768, layers: 12, heads: 12, kvHeads: 12, intermediate: 2048, seq: 512, tie: true },
  // TinyLlama-1.1B shape (untied head)
  large: { vocab: 32000, hidden: 2048, layers: 22, heads: 32, kvHeads: 4, intermediate: 5632, seq: 512, tie: false },
};

export function preset(name: string): Preset {
  const p = PRESETS[name];
  if (p === undefined) throw new ConfigError(`--preset ${name} is not a preset`, `use one of: ${Object.keys(PRESETS).join(', ')}`);
  return p;
}

export function presetConfig(p: Preset): LlamaConfig {
  return llamaConfigFromHf({
    model_type: 'llama', vocab_size: p.vocab, hidden_size: p.hidden, intermediate_size: p.intermediate, num_hidden_layers: p.layers,
    num_attention_heads: p.heads, num_key_value_heads: p.kvHeads, max_position_embeddings: Math.max(2048, p.seq), rms_norm_eps: 1e-5,
    rope_theta: 10000, tie_word_embeddings: p.tie, bos_token_id: 1, eos_token_id: 2,
  }, 'bench preset');
}

/** Linear weights per layer (q, k, v, o, gate, up, down). */
export function linearParamsPerLayer(p: Preset): number {
  const d = p.hidden / p.heads;
  return p.hidden * p.heads * d * 2 + p.hidden * p.kvHeads * d * 2 + 3 * p.hidden * p.intermediate;
}

/**
 * FLOPs per token exactly as torch_anchor.py counts them: 6 (full) or 4 (frozen base)
 * per matmul weight, 6 per LoRA weight, and 12 * L * T * d_attn for attention scores.
 */
export function flopsPerToken(p: Preset, method: 'full' | 'lora' | 'qlora', loraParams: number): number {
  const nMatmul = linearParamsPerLayer(p) * p.layers + p.vocab * p.hidden;
  const attn = 12 * p.layers * p.seq * p.heads * (p.hidden / p.heads);
  return method === 'full' ? 6 * nMatmul + attn : 4 * nMatmul + 6 * loraParams + attn;
}
