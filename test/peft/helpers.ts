// Shared setup for the PEFT tests: stories260K-hf (and a random Qwen2-style model with an
// untied lm_head and q/k/v biases) on a backend that has the ops LoRA's forward uses.
import { nativeBackend } from '../../src/backend/index.js';
import { AutoModelForCausalLM } from '../../src/models/auto.js';
import { llamaConfigFromHf } from '../../src/models/llama/config.js';
import { LlamaForCausalLM, type WeightSource } from '../../src/models/llama/model.js';
import { scope } from '../../src/tensor/scope.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../helpers/random.js';

export function loadStories(dir: string): LlamaForCausalLM {
  return AutoModelForCausalLM.fromPretrained(dir, { backend: nativeBackend });
}

export const QWEN2_CONFIG = {
  model_type: 'qwen2', vocab_size: 97, hidden_size: 48, intermediate_size: 72, num_hidden_layers: 2,
  num_attention_heads: 8, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-6,
  rope_theta: 1000000.0, tie_word_embeddings: false, hidden_act: 'silu', bos_token_id: 0, eos_token_id: 1,
};

/** A random Qwen2-style model (untied lm_head, q/k/v biases, 2 layers, hidden 48). */
export function randomQwen2(seed: number): LlamaForCausalLM {
  const rng = new Rng(seed);
  const source: WeightSource = (_name, shape, role) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = role === 'norm' ? rng.normals(n, 0.1).map((v) => 1 + v) : rng.normals(n, role === 'bias' ? 0.1 : 0.2);
    return Tensor.from(shape, 'f32', values, 'weights');
  };
  return new LlamaForCausalLM(llamaConfigFromHf(QWEN2_CONFIG), source, nativeBackend);
}

/** Logits of every position of `ids` (one row), as a plain array. */
export function logitsOf(model: Pick<LlamaForCausalLM, 'newCache' | 'forward'>, ids: number[]): Float32Array {
  const cache = model.newCache(1, ids.length);
  try {
    return scope(() => Float32Array.from(model.forward(Int32Array.from(ids), 1, cache, 'all').data));
  } finally {
    cache.release();
  }
}

/** Largest |a - b| over two equal-length arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] ?? NaN) - (b[i] ?? NaN)));
  return worst;
}

/** Fills every lora_B of `adapter` with N(0, std) values so the adapter changes outputs. */
export function randomizeB(layers: Array<[string, { adapter(n: string): { b: { weight: Tensor } } }]>, adapter: string, seed: number, std = 0.05): void {
  const rng = new Rng(seed);
  for (const [, l] of layers) {
    const w = l.adapter(adapter).b.weight;
    w.data.set(rng.normals(w.size, std));
  }
}
