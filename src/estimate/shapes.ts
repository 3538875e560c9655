// Parameter shapes and byte counts of a Llama-family model, from its config alone: the
// linear layers of one decoder layer, what LoRA adds to them, and what a 4-bit (NF4/FP4,
// optional double quantization) weight occupies. Shared by the memory estimate.
import { ConfigError } from '../errors.js';
import type { LlamaConfig } from '../models/llama/config.js';

export const LINEAR_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LinearModule = (typeof LINEAR_MODULES)[number];

const SHORT: Readonly<Record<string, LinearModule>> = { q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj', gate: 'gate_proj', up: 'up_proj', down: 'down_proj' };

/** One linear layer: out (N) x in (K) and whether it has a bias. */
export interface LinearShape {
  name: LinearModule;
  out: number; // N
  in: number; // K
  bias: boolean;
}

/** The seven linear layers of one decoder layer, as model.ts builds them. */
export function layerLinears(cfg: LlamaConfig): LinearShape[] {
  const { hiddenSize: c, intermediateSize: f, numAttentionHeads: h, numKeyValueHeads: hkv, headDim: d } = cfg;
  return [
    { name: 'q_proj', out: h * d, in: c, bias: cfg.qkvBias },
    { name: 'k_proj', out: hkv * d, in: c, bias: cfg.qkvBias },
    { name: 'v_proj', out: hkv * d, in: c, bias: cfg.qkvBias },
    { name: 'o_proj', out: c, in: h * d, bias: cfg.oBias },
    { name: 'gate_proj', out: f, in: c, bias: cfg.mlpBias },
    { name: 'up_proj', out: f, in: c, bias: cfg.mlpBias },
    { name: 'down_proj', out: c, in: f, bias: cfg.mlpBias },
  ];
}

/**
 * LoRA target modules: 'all-linear' (every decoder linear, never lm_head, as PEFT), or
 * names in HF (q_proj) or short (q) form.
 */
export function resolveTargets(targets: readonly string[] | 'all-linear'): LinearModule[] {
  if (targets === 'all-linear') return [...LINEAR_MODULES];
  const out: LinearModule[] = [];
  for (const t of targets) {
    const name = SHORT[t] ?? LINEAR_MODULES.find((m) => m === t);
    if (name === undefined) throw new ConfigError(`target module ${JSON.stringify(t)} is not a linear layer of a Llama decoder layer`, `use all-linear or names from: ${LINEAR_MODULES.join(', ')}`);
    if (!out.includes(name)) out.push(name);
  }
  if (out.length === 0) throw new ConfigError('no LoRA target modules given', 'pass --target-modules q,v or all-linear');
  return out;
}

/** Element counts of the model's parameters by kind. */
export interface ParamCounts {
  linear: number; // decoder linear weights (the part QLoRA quantizes)
  bias: number;
  norm: number;
  embedding: number;
  head: number; // 0 when tied to the embedding
  total: number;
}

export function paramCounts(cfg: LlamaConfig): ParamCounts {
  const lin = layerLinears(cfg);
  const l = cfg.numHiddenLayers;
  const linear = l * lin.reduce((n, s) => n + s.out * s.in, 0);
  const bias = l * lin.reduce((n, s) => n + (s.bias ? s.out : 0), 0);
  const norm = (2 * l + 1) * cfg.hiddenSize;
  const embedding = cfg.vocabSize * cfg.hiddenSize;
  const head = cfg.tieWordEmbeddings ? 0 : embedding;
  return { linear, bias, norm, embedding, head, total: linear + bias + norm + embedding + head };
}

/** LoRA parameters (A (r, K) + B (N, r) per target, every layer). */
export function loraParamCount(cfg: LlamaConfig, targets: readonly LinearModule[], r: number): number {
  const per = layerLinears(cfg).filter((s) => targets.includes(s.name)).reduce((n, s) => n + r * (s.in + s.out), 0);
  return cfg.numHiddenLayers * per;
}

/** Native blocks are rounded up to 64 bytes (native/src/core_bind.cc Alloc). */
export const block = (bytes: number): number => Math.max(64, Math.ceil(bytes / 64) * 64);

/** 4-bit storage options (bitsandbytes): elements per absmax block and double quantization. */
export interface Quant4Layout {
  blocksize: number;
  doubleQuant: boolean;
}

/**
 * Bytes of one 4-bit weight of n elements: packed codes (n/2), and per block either an f32
 * absmax or, double-quantized, a u8 code plus one f32 scale per 256 blocks
 * (src/quant/weight.ts buildWeight; Dettmers et al. 2023, section 3).
 */
export function quant4Bytes(n: number, q: Quant4Layout): number {
  const blocks = Math.ceil(n / q.blocksize);
  const scales = q.doubleQuant ? block(blocks) + block(Math.ceil(blocks / 256) * 4) : block(blocks * 4);
  return block(Math.ceil(n / 2)) + scales;
}
