// Llama-family configuration (Llama 1/2/3, Mistral, Qwen2, SmolLM): parsed from an HF
// config.json (Transformers v4 top-level rope_theta/rope_scaling and v5 rope_parameters
// both accepted), and the RoPE inverse frequencies it implies.
import { FormatError } from '../../errors.js';

export type LlamaModelType = 'llama' | 'mistral' | 'qwen2';
export const LLAMA_MODEL_TYPES: readonly LlamaModelType[] = ['llama', 'mistral', 'qwen2'];

export type RopeScaling =
  | { type: 'default' }
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number };

export interface LlamaConfig {
  modelType: LlamaModelType;
  vocabSize: number;
  hiddenSize: number; // C
  intermediateSize: number; // F
  numHiddenLayers: number; // L
  numAttentionHeads: number; // H
  numKeyValueHeads: number; // Hkv
  headDim: number; // D
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  tieWordEmbeddings: boolean;
  /** Biases on q/k/v projections (Qwen2 always; Llama with attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama with attention_bias; never Qwen2). */
  oBias: boolean;
  mlpBias: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** The config.json object as read, kept so savePretrained writes back what it loaded. */
  raw: Record<string, unknown>;
}

type Json = Record<string, unknown>;

function field(json: Json, key: string, file: string, fallback?: number): number {
  const v = json[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new FormatError(`${file}: missing field "${key}"`, `add "${key}" (a number) to config.json; it is required for this model type`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new FormatError(`${file}: field "${key}" must be a number, got ${JSON.stringify(v)}`, `fix "${key}" in config.json`);
  }
  return v;
}

function positiveInt(json: Json, key: string, file: string, fallback?: number): number {
  const v = field(json, key, file, fallback);
  if (!Number.isInteger(v) || v <= 0) throw new FormatError(`${file}: field "${key}" must be a positive integer, got ${v}`, `fix "${key}" in config.json`);
  return v;
}

function bool(json: Json, key: string, file: string, fallback: boolean): boolean {
  const v = json[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new FormatError(`${file}: field "${key}" must be true or false, got ${JSON.stringify(v)}`, `fix "${key}" in config.json`);
  return v;
}

function tokenIds(v: unknown, key: string, file: string): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const id of list) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new FormatError(`${file}: "${key}" must be a token id or a list of them, got ${JSON.stringify(v)}`, `fix "${key}" in config.json`);
  }
  return list as number[];
}

function parseRopeScaling(json: Json, file: string): { theta: number; scaling: RopeScaling } {
  // v5: rope_parameters {rope_type, rope_theta, factor, ...}; v4: rope_theta + rope_scaling.
  const params = json['rope_parameters'];
  const scalingJson = (params ?? json['rope_scaling']) as Json | null | undefined;
  const thetaSource = params !== undefined && params !== null && typeof params === 'object' ? (params as Json) : json;
  const theta = field(thetaSource, 'rope_theta', file, 10000);
  if (scalingJson === undefined || scalingJson === null) return { theta, scaling: { type: 'default' } };
  if (typeof scalingJson !== 'object') throw new FormatError(`${file}: "rope_scaling" must be an object or null`, 'fix rope_scaling in config.json');
  const type = scalingJson['rope_type'] ?? scalingJson['type'] ?? 'default';
  const key = params !== undefined ? 'rope_parameters' : 'rope_scaling';
  switch (type) {
    case 'default':
      return { theta, scaling: { type: 'default' } };
    case 'linear':
      return { theta, scaling: { type: 'linear', factor: field(scalingJson, 'factor', `${file} ${key}`) } };
    case 'llama3':
      return {
        theta,
        scaling: {
          type: 'llama3',
          factor: field(scalingJson, 'factor', `${file} ${key}`),
          lowFreqFactor: field(scalingJson, 'low_freq_factor', `${file} ${key}`),
          highFreqFactor: field(scalingJson, 'high_freq_factor', `${file} ${key}`),
          originalMaxPositionEmbeddings: field(scalingJson, 'original_max_position_embeddings', `${file} ${key}`),
        },
      };
    default:
      throw new FormatError(`${file}: rope type ${JSON.stringify(type)} is not supported`, 'supported rope types: default, linear, llama3');
  }
}

/** Parses a config.json object of a Llama-family model. `file` names it in errors. */
export function llamaConfigFromHf(json: unknown, file = 'config.json'): LlamaConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new FormatError(`${file}: not a JSON object`, 'config.json must hold a JSON object');
  const j = json as Json;
  const modelType = j['model_type'];
  if (typeof modelType !== 'string' || !LLAMA_MODEL_TYPES.includes(modelType as LlamaModelType)) {
    throw new FormatError(`${file}: model_type ${JSON.stringify(modelType)} is not supported`, `supported model types: ${LLAMA_MODEL_TYPES.join(', ')}`);
  }
  const type = modelType as LlamaModelType;
  const hiddenSize = positiveInt(j, 'hidden_size', file);
  const heads = positiveInt(j, 'num_attention_heads', file);
  const kvHeads = positiveInt(j, 'num_key_value_heads', file, heads);
  const headDim = positiveInt(j, 'head_dim', file, Math.floor(hiddenSize / heads));
  if (heads % kvHeads !== 0) throw new FormatError(`${file}: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`, 'fix the head counts in config.json');
  if (headDim % 2 !== 0) throw new FormatError(`${file}: head_dim ${headDim} must be even for RoPE`, 'fix head_dim in config.json');
  const act = j['hidden_act'] ?? 'silu';
  if (act !== 'silu') throw new FormatError(`${file}: hidden_act ${JSON.stringify(act)} is not supported`, 'only "silu" (SwiGLU MLP) is supported');
  const attentionBias = bool(j, 'attention_bias', file, false);
  const rope = parseRopeScaling(j, file);
  const defaults = type === 'qwen2' ? { eps: 1e-6, tie: false } : { eps: 1e-6, tie: false };
  return {
    modelType: type,
    vocabSize: positiveInt(j, 'vocab_size', file),
    hiddenSize,
    intermediateSize: positiveInt(j, 'intermediate_size', file),
    numHiddenLayers: positiveInt(j, 'num_hidden_layers', file),
    numAttentionHeads: heads,
    numKeyValueHeads: kvHeads,
    headDim,
    maxPositionEmbeddings: positiveInt(j, 'max_position_embeddings', file, 2048),
    rmsNormEps: field(j, 'rms_norm_eps', file, defaults.eps),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    tieWordEmbeddings: bool(j, 'tie_word_embeddings', file, defaults.tie),
    qkvBias: type === 'qwen2' ? true : attentionBias,
    oBias: type === 'qwen2' ? false : attentionBias,
    mlpBias: bool(j, 'mlp_bias', file, false),
    bosTokenId: tokenIds(j['bos_token_id'], 'bos_token_id', file)[0] ?? null,
    eosTokenIds: tokenIds(j['eos_token_id'], 'eos_token_id', file),
    raw: { ...j },
  };
}

/**
 * RoPE inverse frequencies (D/2), as Transformers' rope init functions compute them:
 * inv_freq[j] = 1 / theta^(2j/D), then linear or llama3 scaling. Returned in f32, the
 * precision HF keeps them in.
 */
export function ropeInvFreq(cfg: Pick<LlamaConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float32Array {
  const half = cfg.headDim / 2;
  const inv = new Float32Array(half);
  for (let j = 0; j < half; j++) inv[j] = 1 / Math.pow(cfg.ropeTheta, (2 * j) / cfg.headDim);
  const s = cfg.ropeScaling;
  if (s.type === 'linear') {
    for (let j = 0; j < half; j++) inv[j] = (inv[j] ?? 0) / s.factor;
  } else if (s.type === 'llama3') {
    // transformers/modeling_rope_utils.py _compute_llama3_parameters.
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let j = 0; j < half; j++) {
      const f = inv[j] ?? 0;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) {
        inv[j] = f / s.factor;
      } else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        inv[j] = (1 - smooth) * (f / s.factor) + smooth * f;
      }
    }
  }
  return inv;
}
