// Llama-family decoder (Llama 1/2/3, Mistral, Qwen2, SmolLM): HF LlamaForCausalLM with
// module fields named as in the checkpoint, so parameter paths equal safetensors keys.
import type { Backend, FTensor } from '../../backend/backend.js';
import { Ops, type CrossEntropyResult } from '../../autograd/ops.js';
import { ShapeError } from '../../errors.js';
import { Embedding, Linear, RMSNorm, type LinearLayer } from '../../nn/layers.js';
import { Linear4bit } from '../../nn/linear4bit.js';
import type { Quant4Weight } from '../../quant/types.js';
import type { BitsAndBytesConfig } from '../../quant/config.js';
import { Module } from '../../nn/module.js';
import { Tensor } from '../../tensor/tensor.js';
import { ropeInvFreq, type LlamaConfig } from './config.js';
import { KvCache } from './kv-cache.js';
import { saveModel } from '../save.js';
import { generate, type GenerateOptions, type GenerationDefaults } from '../../generate/generate.js';

/** Supplies the parameter stored under an HF name, with the shape the config implies. */
export type WeightSource = (name: string, shape: number[], role: 'linear' | 'bias' | 'norm' | 'embedding') => Tensor;

/**
 * Supplies 4-bit weights: the quantized form of linear layer `name` (weight (N, K)), or
 * undefined to keep it dense (lm_head and skipped modules).
 */
export interface QuantSource {
  weight(name: string, shape: [number, number]): Quant4Weight | undefined;
  computeDtype: 'f32' | 'bf16';
}

function linear(src: WeightSource, name: string, outF: number, inF: number, bias: boolean, quant?: QuantSource): LinearLayer {
  const b = bias ? (src(`${name}.bias`, [outF], 'bias') as FTensor) : undefined;
  const q = quant?.weight(name, [outF, inF]);
  if (q !== undefined && quant !== undefined) return new Linear4bit(q, b, quant.computeDtype);
  return new Linear(src(`${name}.weight`, [outF, inF], 'linear'), b);
}

function norm(src: WeightSource, name: string, c: number, eps: number): RMSNorm {
  return new RMSNorm(src(`${name}.weight`, [c], 'norm') as Tensor<'f32'>, eps);
}

export class LlamaAttention extends Module {
  q_proj: LinearLayer;
  k_proj: LinearLayer;
  v_proj: LinearLayer;
  o_proj: LinearLayer;
  constructor(cfg: LlamaConfig, src: WeightSource, prefix: string, quant?: QuantSource) {
    super();
    const { hiddenSize: c, numAttentionHeads: h, numKeyValueHeads: hkv, headDim: d } = cfg;
    this.q_proj = linear(src, `${prefix}.q_proj`, h * d, c, cfg.qkvBias, quant);
    this.k_proj = linear(src, `${prefix}.k_proj`, hkv * d, c, cfg.qkvBias, quant);
    this.v_proj = linear(src, `${prefix}.v_proj`, hkv * d, c, cfg.qkvBias, quant);
    this.o_proj = linear(src, `${prefix}.o_proj`, c, h * d, cfg.oBias, quant);
  }
}

export class LlamaMLP extends Module {
  gate_proj: LinearLayer;
  up_proj: LinearLayer;
  down_proj: LinearLayer;
  constructor(cfg: LlamaConfig, src: WeightSource, prefix: string, quant?: QuantSource) {
    super();
    const { hiddenSize: c, intermediateSize: f, mlpBias } = cfg;
    this.gate_proj = linear(src, `${prefix}.gate_proj`, f, c, mlpBias, quant);
    this.up_proj = linear(src, `${prefix}.up_proj`, f, c, mlpBias, quant);
    this.down_proj = linear(src, `${prefix}.down_proj`, c, f, mlpBias, quant);
  }
  // x (N, C) -> (N, C): down(silu(gate(x)) * up(x))
  forward(ops: Ops, x: FTensor): FTensor {
    const g = this.gate_proj.forward(ops, x);
    const u = this.up_proj.forward(ops, x);
    const s = ops.siluMul(g, u);
    const y = this.down_proj.forward(ops, s);
    ops.rematerialize(s, (o) => o.siluMul(g, u));
    return y;
  }
}

export class LlamaDecoderLayer extends Module {
  self_attn: LlamaAttention;
  mlp: LlamaMLP;
  input_layernorm: RMSNorm;
  post_attention_layernorm: RMSNorm;
  constructor(cfg: LlamaConfig, src: WeightSource, prefix: string, quant?: QuantSource) {
    super();
    this.self_attn = new LlamaAttention(cfg, src, `${prefix}.self_attn`, quant);
    this.mlp = new LlamaMLP(cfg, src, `${prefix}.mlp`, quant);
    this.input_layernorm = norm(src, `${prefix}.input_layernorm`, cfg.hiddenSize, cfg.rmsNormEps);
    this.post_attention_layernorm = norm(src, `${prefix}.post_attention_layernorm`, cfg.hiddenSize, cfg.rmsNormEps);
  }

  // x (B*T, C) -> (B*T, C)
  forward(ops: Ops, x: FTensor, ctx: LayerContext): FTensor {
    const { batch: b, t, cfg } = ctx;
    const { numAttentionHeads: h, numKeyValueHeads: hkv, headDim: d } = cfg;
    const attn = this.self_attn;
    const hIn = this.input_layernorm.forward(ops, x);
    const qp = attn.q_proj.forward(ops, hIn), kp = attn.k_proj.forward(ops, hIn);
    let v = ops.reshape(attn.v_proj.forward(ops, hIn), [b, t, hkv, d]);
    ops.rematerialize(hIn, (o) => this.input_layernorm.forward(o, x));
    let a: FTensor;
    if (ctx.cache === undefined) {
      // RoPE inside attention (Ops.attention): the rotated q and k are never stored.
      const rope = { positions: ctx.positions, invFreq: ctx.invFreq };
      a = ops.attention(ops.reshape(qp, [b, t, h, d]), ops.reshape(kp, [b, t, hkv, d]), v, t, 1 / Math.sqrt(d), rope);
    } else {
      // Decoding: the cache holds rotated keys. Projections read only by rope are dropped
      // once used (rope's backward rule needs no inputs).
      const q = ops.rope(ops.reshape(qp, [b, t, h, d]), ctx.positions, ctx.invFreq);
      let k = ops.rope(ops.reshape(kp, [b, t, hkv, d]), ctx.positions, ctx.invFreq);
      ops.drop(qp);
      ops.drop(kp);
      const { cache, layer, pos0 } = ctx.cache;
      cache.write(layer, k as Tensor<'f32'>, v as Tensor<'f32'>);
      [k, v] = [cache.keys(layer), cache.values(layer)];
      a = ops.attention(q, k, v, pos0 + t, 1 / Math.sqrt(d));
    }
    a = ops.reshape(a, [b * t, h * d]);
    const o = attn.o_proj.forward(ops, a);
    const x1 = ops.add(x, o);
    ops.drop(o);
    const h2 = this.post_attention_layernorm.forward(ops, x1);
    const m = this.mlp.forward(ops, h2);
    ops.rematerialize(h2, (o) => this.post_attention_layernorm.forward(o, x1));
    const y = ops.add(x1, m);
    ops.drop(m);
    return y;
  }
}

/** What every decoder layer of one forward pass shares. */
export interface LayerContext {
  cfg: LlamaConfig;
  batch: number; // B
  t: number; // T new tokens per row
  positions: Int32Array; // (T)
  invFreq: Float32Array; // (D/2)
  /** Inference: append k, v to this cache (layer set per call) and attend over it. */
  cache?: { cache: KvCache; layer: number; pos0: number };
}

export class LlamaModel extends Module {
  embed_tokens: Embedding;
  layers: LlamaDecoderLayer[];
  norm: RMSNorm;
  constructor(cfg: LlamaConfig, src: WeightSource, quant?: QuantSource) {
    super();
    this.embed_tokens = new Embedding(src('model.embed_tokens.weight', [cfg.vocabSize, cfg.hiddenSize], 'embedding'));
    this.layers = [];
    for (let i = 0; i < cfg.numHiddenLayers; i++) this.layers.push(new LlamaDecoderLayer(cfg, src, `model.layers.${i}`, quant));
    this.norm = norm(src, 'model.norm', cfg.hiddenSize, cfg.rmsNormEps);
  }
}

/** Options of a training/eval loss: checkpointed layers; the backward seed, when known up front. */
export interface LossOptions {
  checkpoint?: boolean;
  /** The upstream gradient the loss will get in backward (the trainer's token weight). */
  gradScale?: number;
}

export class LlamaForCausalLM extends Module {
  readonly config: LlamaConfig;
  /** Where forward() runs: the native kernels, or the TypeScript reference in tests. */
  backend: Backend;
  /** generation_config.json values, when the checkpoint has one. */
  generationConfig: GenerationDefaults = {};
  /** The directory (or hub name) the model was loaded from; '' when built in memory. */
  nameOrPath = '';
  model: LlamaModel;
  /** Absent when tie_word_embeddings: the embedding matrix is the output head. */
  lm_head: Linear | undefined;
  readonly invFreq: Float32Array; // (D/2)

  /** bitsandbytes settings when the linear layers are 4-bit (saved as quantization_config). */
  quantizationConfig: BitsAndBytesConfig | undefined;

  /** `quant` makes the decoder's linear layers 4-bit (lm_head always stays dense). */
  constructor(cfg: LlamaConfig, src: WeightSource, backend: Backend, quant?: QuantSource) {
    super();
    this.config = cfg;
    this.backend = backend;
    this.model = new LlamaModel(cfg, src, quant);
    this.lm_head = cfg.tieWordEmbeddings ? undefined : new Linear(src('lm_head.weight', [cfg.vocabSize, cfg.hiddenSize], 'linear'));
    this.invFreq = ropeInvFreq(cfg);
  }

  /** The output head: lm_head, or the embedding matrix when tied. */
  get headWeight(): Tensor {
    return this.lm_head?.weight ?? this.model.embed_tokens.weight;
  }

  /**
   * The decoder stack over T tokens per row and the final norm. With a cache, appends
   * the new keys/values after cache.length positions; with `checkpoint`, each layer is
   * recomputed in backward instead of keeping its activations.
   */
  // ids (B*T) -> (B*T, C)
  hidden(ops: Ops, ids: Int32Array, batch: number, opts: { cache?: KvCache; checkpoint?: boolean } = {}): FTensor {
    const t = ids.length / batch;
    if (!Number.isInteger(t) || t < 1) throw new ShapeError(`${ids.length} token ids do not split into ${batch} rows`);
    const pos0 = opts.cache?.length ?? 0;
    if (opts.cache !== undefined && pos0 + t > opts.cache.capacity) {
      throw new ShapeError(`KV cache holds ${opts.cache.capacity} positions; ${pos0} used + ${t} new do not fit`);
    }
    const positions = new Int32Array(t);
    for (let i = 0; i < t; i++) positions[i] = pos0 + i;
    const ctx: LayerContext = { cfg: this.config, batch, t, positions, invFreq: this.invFreq };
    let x = this.model.embed_tokens.forward(ops, Tensor.from([ids.length], 'i32', ids));
    this.model.layers.forEach((layer, li) => {
      const c = opts.cache === undefined ? ctx : { ...ctx, cache: { cache: opts.cache, layer: li, pos0 } };
      x = opts.checkpoint === true ? ops.checkpoint(x, (o, xi) => layer.forward(o, xi, c)) : layer.forward(ops, x, c);
    });
    opts.cache?.advance(t);
    return this.model.norm.forward(ops, x);
  }

  /**
   * Inference: runs T new tokens per row through the model, appending to `cache`, and
   * returns the logits of the last token of each row (B, V) or of every token (B*T, V).
   */
  // ids (B*T) -> (B, V) | (B*T, V)
  forward(ids: Int32Array, batch: number, cache: KvCache, logitsFor: 'last' | 'all' = 'last'): Tensor<'f32'> {
    const ops = new Ops(this.backend);
    const t = ids.length / batch;
    let h = this.hidden(ops, ids, batch, { cache });
    if (logitsFor === 'last' && t > 1) h = lastRows(h, batch, t);
    return ops.linear(h, this.headWeight) as Tensor<'f32'>;
  }

  /**
   * Training/eval loss: mean next-token cross-entropy of ids (B*T) against labels (B*T)
   * (-100 = no loss), shifted inside as Transformers does (logits at t predict t + 1).
   */
  loss(ops: Ops, ids: Int32Array, labels: Int32Array, batch: number, opts: LossOptions = {}): CrossEntropyResult {
    const t = ids.length / batch;
    const shifted = new Int32Array(ids.length).fill(-100);
    for (let b = 0; b < batch; b++) shifted.set(labels.subarray(b * t + 1, (b + 1) * t), b * t);
    const h = this.hidden(ops, ids, batch, opts);
    return ops.crossEntropy(h, this.headWeight, shifted, opts.gradScale);
  }

  /** Full fine-tuning trains every parameter. */
  trainableParameters(): Array<[string, Tensor]> {
    return this.namedParameters();
  }

  /** Writes config.json, model.safetensors (sharded past 5 GB) and generation_config.json. */
  savePretrained(dir: string): void {
    saveModel(this, dir);
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
function lastRows(x: FTensor, batch: number, t: number): FTensor {
  const c = x.shape[1] ?? 0;
  const out = Tensor.zeros([batch, c], x.dtype);
  for (let b = 0; b < batch; b++) out.data.set(x.data.subarray(((b + 1) * t - 1) * c, (b + 1) * t * c), b * c);
  return out;
}
