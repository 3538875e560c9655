// `ftune estimate`: the peak resident memory of a training run, predicted from the model
// config without allocating anything. The model follows what the code allocates (each
// term cites the file it counts) and predicts the process peak RSS that `ftune bench`
// reports (peak_rss_mib), checked within 15% on the bench presets (docs/estimate.md).
//
// Memory at the peak = runtime + weights + LoRA + grads + optimizer + activations +
// workspace + allocator cache, where:
// - activations are every tensor the forward pass allocates (the step's scope keeps them
//   until the tape frees them in backward: src/autograd/tape.ts), plus the larger of the
//   cross-entropy chunk (src/autograd/ops.ts crossEntropy, crossEntropyChunkRows) and the backward
//   transient of the last layer; with checkpointing only the layer inputs survive the
//   forward pass and one layer is recomputed in backward (Ops.checkpoint);
// - the allocator cache is memory freed into the caching pool (native/src/pool.cc) in
//   sizes that are not asked for again before the peak, so it stays resident.
import { crossEntropyChunkRows } from '../autograd/ops.js';
import type { LlamaConfig } from '../models/llama/config.js';
import { block, layerLinears, loraParamCount, paramCounts, quant4Bytes, resolveTargets, type LinearModule, type LinearShape, type Quant4Layout } from './shapes.js';

export type Method = 'full' | 'lora' | 'qlora';

export interface EstimateOptions {
  method: Method;
  batch: number; // B
  seq: number; // T
  /** LoRA rank (lora, qlora). */
  r: number;
  targetModules: readonly string[] | 'all-linear';
  gradientCheckpointing: boolean;
  /** bf16 matmuls; for lora also a bf16 frozen base (as `ftune bench --bf16`). */
  bf16: boolean;
  /** 4-bit layout (qlora): bitsandbytes NF4, blocksize 64, double quantization by default. */
  quant?: Quant4Layout;
  /** 4-bit compute dtype (qlora); the QLoRA preset's bf16 by default. */
  computeDtype?: 'f32' | 'bf16';
}

export const ESTIMATE_DEFAULTS = { batch: 1, seq: 512, r: 8, targetModules: ['q_proj', 'v_proj'], quant: { blocksize: 64, doubleQuant: true }, computeDtype: 'bf16' } as const;

/** Bytes per part of the peak. */
export interface MemoryBreakdown {
  runtime: number;
  weights: number;
  lora: number;
  grads: number;
  optimizer: number;
  activations: number;
  workspace: number;
  allocatorCache: number;
  total: number;
}

export interface MemoryEstimate {
  bytes: MemoryBreakdown;
  gib: MemoryBreakdown;
  params: { total: number; trainable: number; quantized: number };
  assumptions: Record<string, string | number | boolean | string[] | null>;
}

/**
 * The node process before any tensor: V8 heap, JIT code, libstdc++/OpenMP/OpenBLAS and the
 * addon (measured: `ftune bench --preset tiny` peak RSS minus its accounted bytes is
 * 81-88 MiB on Node 20 / x86-64 Linux).
 */
export const RUNTIME_BYTES = 66 * 2 ** 20;

/** Blocks of this size or more come from the caching pool (native/src/pool.cc POOL_MIN). */
const POOL_MIN = 256 * 1024;
const F32 = 4;
const BF16 = 2;

const cached = (bytes: number): number => (bytes >= POOL_MIN ? block(bytes) : 0);

interface Dims {
  n: number; // B*T tokens
  c: number; // C
  f: number; // F
  v: number; // V
  l: number; // L
  lin: LinearShape[];
  targets: LinearModule[];
}

/** f32 values one decoder layer's forward pass allocates per token (model.ts LlamaDecoderLayer.forward). */
function layerForwardFloats(d: Dims, o: EstimateOptions): number {
  const byName = (m: LinearModule): LinearShape => d.lin.find((s) => s.name === m) ?? { name: m, out: 0, in: 0, bias: false };
  const [hq, hk] = [byName('q_proj').out, byName('k_proj').out];
  // Kept: norm1 C, rope q Hq, rope k Hk, v Hk, attention Hq, add C, norm2 C, gate F,
  // up F, silu*up F, add C (the q, k, o and down projections are dropped once used).
  // Full fine-tuning recomputes norm1, norm2 and silu*up in backward (Ops recompute).
  const base = o.method === 'full' ? 2 * d.c + 2 * hq + 2 * hk + 2 * d.f : 4 * d.c + 2 * hq + 2 * hk + 3 * d.f;
  // LoRA branch (autograd/lora-linear.ts, dropout 0): only scaling * A x (r); B's product
  // accumulates into the base output.
  const lora = o.method === 'full' ? 0 : d.lin.filter((s) => d.targets.includes(s.name)).length * o.r;
  return base + lora;
}

/** Bytes live at the two candidate peaks of a step (accounted tensors) and the RSS-only cache then. */
function activationPeaks(d: Dims, o: EstimateOptions): { act: number; cacheAtPeak: number } {
  const nc = d.n * d.c * F32;
  const layer = d.n * layerForwardFloats(d, o) * F32;
  // full --bf16: f32 weights are rounded while packed (Ops.linear), except a linear with a
  // bias, whose weight is cast to bf16 and kept for backward.
  const biased = d.lin.filter((s) => s.bias).reduce((n, s) => n + s.in * s.out, 0) * d.l;
  const weightCasts = o.method === 'full' && o.bf16 ? biased * BF16 : 0;
  // (Full fine-tuning: the head's dW goes straight into the flat gradient buffer, gradScale.)
  const rows = Math.min(crossEntropyChunkRows(d.v), d.n);
  const logits = rows * d.v * F32;
  // The chunk's logits (h and dh rows are views; bf16 products round while packing).
  const ceChunk = logits;
  // Last layer's backward at silu*mul: dSilu, dGate, dUp (3 N F) while norm, add and down
  // outputs are freed (weight gradients accumulate in place: FlatParams.tape); full
  // fine-tuning also holds the recomputed silu*up (N F) until that node is done.
  const transient = d.n * (3 * d.f - 3 * d.c + (o.method === 'full' ? d.f : 0)) * F32;
  // Embedding output, final norm output, dh of the loss (ids are i32 N).
  const model = 3 * nc + d.n * 4;
  if (!o.gradientCheckpointing) {
    const kept = model + d.l * layer + weightCasts;
    return { act: kept + Math.max(ceChunk, transient), cacheAtPeak: 0 };
  }
  // Checkpointing: the L layer inputs survive; backward recomputes one layer (with its
  // weight casts), and the upstream gradient plus dx accumulate two more (N, C).
  const kept = model + d.l * nc;
  const atLoss = kept + ceChunk;
  // (The LoRA branch's dx accumulates into the base's, dense or 4-bit: autograd/lora-linear.ts.)
  const atLastLayer = (d.l + 1) * nc + layer + weightCasts / d.l + transient + 2 * nc;
  // While backward runs, the loss chunk's logits block waits in the pool (no other tensor has its size).
  const act = Math.max(atLoss, atLastLayer);
  return { act, cacheAtPeak: Math.max(0, atLastLayer + cached(logits) - act) };
}

/** bf16 copies of x or dy that the 4-bit and bf16 matmuls make and free again (workspace). */
function workspaceBytes(d: Dims, o: EstimateOptions): number {
  const bf16Compute = o.method === 'qlora' ? (o.computeDtype ?? ESTIMATE_DEFAULTS.computeDtype) === 'bf16' : o.bf16;
  if (!bf16Compute) return 0;
  const widest = Math.max(...d.lin.map((s) => Math.max(s.in, s.out)));
  return d.n * widest * BF16;
}

/**
 * Memory held beyond the live tensors at the peak that the activation model does not
 * count (RSS-only). Blocks freed while the model is built go back to the system when
 * FlatParams is built (train/params.ts trims the pool), and bf16 matmuls round their f32
 * operands inside the GEMM's packing (no cast copies), so nothing remains here today;
 * the term stays in the breakdown so a future cache shows up in one place.
 */
function allocatorCache(): number {
  return 0;
}

/** Predicts the peak memory of `ftune bench` / `ftune train` with these settings. */
export function estimateMemory(cfg: LlamaConfig, opts: EstimateOptions): MemoryEstimate {
  const o = opts;
  const targets = o.method === 'full' ? [] : resolveTargets(o.targetModules);
  const d: Dims = { n: o.batch * o.seq, c: cfg.hiddenSize, f: cfg.intermediateSize, v: cfg.vocabSize, l: cfg.numHiddenLayers, lin: layerLinears(cfg), targets };
  const p = paramCounts(cfg);
  const quant = o.quant ?? ESTIMATE_DEFAULTS.quant;
  const loraCount = o.method === 'full' ? 0 : loraParamCount(cfg, targets, o.r);
  const dense = (p.embedding + p.head + p.linear) * F32;
  let weights: number;
  if (o.method === 'qlora') {
    const perLayer = d.lin.reduce((n, s) => n + quant4Bytes(s.out * s.in, quant), 0);
    weights = d.l * perLayer + (p.embedding + p.head + p.norm + p.bias) * F32;
  } else if (o.method === 'lora' && o.bf16) {
    weights = (p.embedding + p.head + p.linear) * BF16 + (p.norm + p.bias) * F32;
  } else {
    weights = p.total * F32;
  }
  const trainable = o.method === 'full' ? p.total : loraCount;
  const { act, cacheAtPeak } = activationPeaks(d, o);
  const bytes: MemoryBreakdown = {
    runtime: RUNTIME_BYTES,
    weights,
    lora: loraCount * F32,
    grads: trainable * F32,
    optimizer: 2 * trainable * F32,
    activations: act,
    workspace: workspaceBytes(d, o),
    allocatorCache: allocatorCache() + cacheAtPeak,
    total: 0,
  };
  bytes.total = bytes.runtime + bytes.weights + bytes.lora + bytes.grads + bytes.optimizer + bytes.activations + bytes.workspace + bytes.allocatorCache;
  const gib = { ...bytes };
  for (const k of Object.keys(gib) as Array<keyof MemoryBreakdown>) gib[k] = Math.round((bytes[k] / 2 ** 30) * 1000) / 1000;
  return {
    bytes,
    gib,
    params: { total: p.total, trainable, quantized: o.method === 'qlora' ? p.linear : 0 },
    assumptions: assumptions(o, targets, dense, quant),
  };
}

function assumptions(o: EstimateOptions, targets: LinearModule[], denseBytes: number, quant: Quant4Layout): MemoryEstimate['assumptions'] {
  const base = o.method === 'qlora'
    ? `decoder linears 4-bit (blocksize ${quant.blocksize}${quant.doubleQuant ? ', double quant' : ''}); embeddings, lm_head, norms f32`
    : o.method === 'lora' && o.bf16 ? 'bf16 (norms f32)' : 'f32';
  return {
    method: o.method,
    batch: o.batch,
    seq: o.seq,
    r: o.method === 'full' ? null : o.r,
    target_modules: o.method === 'full' ? null : targets,
    gradient_checkpointing: o.gradientCheckpointing,
    matmul_dtype: o.method === 'qlora' ? (o.computeDtype ?? ESTIMATE_DEFAULTS.computeDtype) : o.bf16 ? 'bf16' : 'f32',
    base_weights: base,
    trainable_dtype: 'f32 (master weights)',
    optimizer: 'AdamW: m and v in f32',
    lora_dropout: 0,
    dense_f32_bytes: denseBytes,
    measured_as: 'process peak RSS (ftune bench peak_rss_mib); runtime is node + addon',
  };
}
