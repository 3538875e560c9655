// Llama-family decoder (Llama 1/2/3, Mistral, Qwen2, SmolLM): HF LlamaForCausalLM with
// module fields named as in the checkpoint, so parameter paths equal safetensors keys.
import type { Backend } from '../../backend/backend.js';
import { ShapeError } from '../../errors.js';
import { Embedding, Linear, RMSNorm } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { Tensor } from '../../tensor/tensor.js';
import { ropeInvFreq, type LlamaConfig } from './config.js';
import { KvCache } from './kv-cache.js';
import { generate, type GenerateOptions, type GenerationDefaults } from '../../generate/generate.js';

/** Supplies the parameter stored under an HF name, with the shape the config implies. */
export type WeightSource = (name: string, shape: number[], role: 'linear' | 'bias' | 'norm' | 'embedding') => Tensor;

function linear(src: WeightSource, name: string, outF: number, inF: number, bias: boolean): Linear {
  const b = bias ? src(`${name}.bias`, [outF], 'bias') : undefined;
  return new Linear(src(`${name}.weight`, [outF, inF], 'linear'), b as Tensor<'f32'> | undefined);
}

function norm(src: WeightSource, name: string, c: number, eps: number): RMSNorm {
  return new RMSNorm(src(`${name}.weight`, [c], 'norm') as Tensor<'f32'>, eps);
}

export class LlamaAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;
  constructor(cfg: LlamaConfig, src: WeightSource, prefix: string) {
    super();
    const { hiddenSize: c, numAttentionHeads: h, numKeyValueHeads: hkv, headDim: d } = cfg;
    this.q_proj = linear(src, `${prefix}.q_proj`, h * d, c, cfg.qkvBias);
    this.k_proj = linear(src, `${prefix}.k_proj`, hkv * d, c, cfg.qkvBias);
    this.v_proj = linear(src, `${prefix}.v_proj`, hkv * d, c, cfg.qkvBias);
    this.o_proj = linear(src, `${prefix}.o_proj`, c, h * d, cfg.oBias);
  }
}

export class LlamaMLP extends Module {
  gate_proj: Linear;
  up_proj: Linear;
  down_proj: Linear;
  constructor(cfg: LlamaConfig, src: WeightSource, prefix: string) {
    super();
    const { hiddenSize: c, intermediateSize: f, mlpBias } = cfg;
    this.gate_proj = linear(src, `${prefix}.gate_proj`, f, c, mlpBias);
    this.up_proj = linear(src, `${prefix}.up_proj`, f, c, mlpBias);
    this.down_proj = linear(src, `${prefix}.down_proj`, c, f, mlpBias);
  }
  // x (N, C) -> (N, C): down(silu(gate(x)) * up(x))
  forward(backend: Backend, x: Tensor<'f32'>): Tensor<'f32'> {
    const g = this.gate_proj.forward(backend, x);
    const u = this.up_proj.forward(backend, x);
    return this.down_proj.forward(backend, backend.siluMul(g, u));
  }
}

export class LlamaDecoderLayer extends Module {
  self_attn: LlamaAttention;
  mlp: LlamaMLP;
  input_layernorm: RMSNorm;
  post_attention_layernorm: RMSNorm;
  constructor(cfg: LlamaConfig, src: WeightSource, prefix: string) {
    super();
    this.self_attn = new LlamaAttention(cfg, src, `${prefix}.self_attn`);
    this.mlp = new LlamaMLP(cfg, src, `${prefix}.mlp`);
    this.input_layernorm = norm(src, `${prefix}.input_layernorm`, cfg.hiddenSize, cfg.rmsNormEps);
    this.post_attention_layernorm = norm(src, `${prefix}.post_attention_layernorm`, cfg.hiddenSize, cfg.rmsNormEps);
  }
}

export class LlamaModel extends Module {
  embed_tokens: Embedding;
  layers: LlamaDecoderLayer[];
  norm: RMSNorm;
  constructor(cfg: LlamaConfig, src: WeightSource) {
    super();
    this.embed_tokens = new Embedding(src('model.embed_tokens.weight', [cfg.vocabSize, cfg.hiddenSize], 'embedding'));
    this.layers = [];
    for (let i = 0; i < cfg.numHiddenLayers; i++) this.layers.push(new LlamaDecoderLayer(cfg, src, `model.layers.${i}`));
    this.norm = norm(src, 'model.norm', cfg.hiddenSize, cfg.rmsNormEps);
  }
}

export class LlamaForCausalLM extends Module {
  readonly config: LlamaConfig;
  /** Where forward() runs: the native kernels, or the TypeScript reference in tests. */
  backend: Backend;
  /** generation_config.json values, when the checkpoint has one. */
  generationConfig: GenerationDefaults = {};
  model: LlamaModel;
  /** Absent when tie_word_embeddings: the embedding matrix is the output head. */
  lm_head: Linear | undefined;
  readonly invFreq: Float32Array; // (D/2)

  constructor(cfg: LlamaConfig, src: WeightSource, backend: Backend) {
    super();
    this.config = cfg;
    this.backend = backend;
    this.model = new LlamaModel(cfg, src);
    this.lm_head = cfg.tieWordEmbeddings ? undefined : linear(src, 'lm_head', cfg.vocabSize, cfg.hiddenSize, false);
    this.invFreq = ropeInvFreq(cfg);
  }

  /**
   * Runs the decoder over T new tokens per batch row, appending their keys and values
   * to `cache` (which already holds cache.length positions), and returns the logits of
   * the rows selected by `logitsFor`: 'last' (B, V) or 'all' (B*T, V).
   */
  // ids (B*T) -> (B, V) | (B*T, V)
  forward(ids: Int32Array, batch: number, cache: KvCache, logitsFor: 'last' | 'all' = 'last'): Tensor<'f32'> {
    const cfg = this.config;
    const backend = this.backend;
    const t = ids.length / batch;
    if (!Number.isInteger(t) || t < 1) throw new ShapeError(`${ids.length} token ids do not split into ${batch} rows`);
    const pos0 = cache.length;
    if (pos0 + t > cache.capacity) throw new ShapeError(`KV cache holds ${cache.capacity} positions; ${pos0} used + ${t} new do not fit`);
    const positions = new Int32Array(t);
    for (let i = 0; i < t; i++) positions[i] = pos0 + i;
    const { numAttentionHeads: h, numKeyValueHeads: hkv, headDim: d } = cfg;
    const scale = 1 / Math.sqrt(d);

    let x = this.model.embed_tokens.forward(backend, Tensor.from([ids.length], 'i32', ids));
    this.model.layers.forEach((layer, li) => {
      const attn = layer.self_attn;
      const hIn = layer.input_layernorm.forward(backend, x);
      const q = backend.rope(attn.q_proj.forward(backend, hIn).reshape([batch, t, h, d]), positions, this.invFreq);
      const k = backend.rope(attn.k_proj.forward(backend, hIn).reshape([batch, t, hkv, d]), positions, this.invFreq);
      const v = attn.v_proj.forward(backend, hIn).reshape([batch, t, hkv, d]);
      cache.write(li, k, v);
      const a = backend.attention(q, cache.keys(li), cache.values(li), pos0 + t, scale).reshape([batch * t, h * d]);
      x = backend.add(x, attn.o_proj.forward(backend, a));
      x = backend.add(x, layer.mlp.forward(backend, layer.post_attention_layernorm.forward(backend, x)));
    });
    cache.advance(t);
    if (logitsFor === 'last' && t > 1) x = lastRows(x, batch, t);
    const hOut = this.model.norm.forward(backend, x);
    return backend.linear(hOut, this.lm_head?.weight ?? this.model.embed_tokens.weight);
  }

  /** A KV cache sized for this model. */
  newCache(batch: number, capacity: number): KvCache {
    const c = this.config;
    return new KvCache(c.numHiddenLayers, batch, capacity, c.numKeyValueHeads, c.headDim);
  }

  /**
   * Generates up to maxNewTokens after inputIds (one sequence) and returns the whole
   * sequence, prompt included, as Transformers does. Greedy unless temperature > 0.
   */
  generate(inputIds: readonly number[], opts: GenerateOptions = {}): number[] {
    return generate(this, inputIds, opts);
  }
}

// x (B*T, C) -> (B, C): the last token of every row (a copy, no arithmetic).
function lastRows(x: Tensor<'f32'>, batch: number, t: number): Tensor<'f32'> {
  const c = x.shape[1] ?? 0;
  const out = Tensor.zeros([batch, c], 'f32');
  for (let b = 0; b < batch; b++) out.data.set(x.data.subarray(((b + 1) * t - 1) * c, (b + 1) * t * c), b * c);
  return out;
}
