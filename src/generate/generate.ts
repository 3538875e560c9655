// Autoregressive generation with a KV cache: one prefill over the prompt, then one
// token per step. Greedy (argmax) or sampled (temperature, top-k, top-p, seed); stops
// at an end-of-sequence id or after maxNewTokens.
import { ConfigError } from '../errors.js';
import type { Backend } from '../backend/backend.js';
import type { KvCache } from '../models/llama/kv-cache.js';
import type { Tensor } from '../tensor/tensor.js';
import { scope } from '../tensor/scope.js';
import { Rng } from '../util/rng.js';
import { sampleFrom } from './sampling.js';

/** What generation_config.json may set (HF names mapped to ours by the loader). */
export interface GenerationDefaults {
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  eosTokenIds?: number[];
  maxNewTokens?: number;
}

export interface GenerateOptions {
  /** New tokens at most (default: generation_config's max_new_tokens, else 20 as in Transformers). */
  maxNewTokens?: number;
  /** 0 = greedy. Default: greedy unless generation_config says do_sample, then its temperature (1 if unset). */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = all). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = all). */
  topP?: number;
  /** Seed of the sampling Rng (default 0), so sampled runs repeat exactly. */
  seed?: number;
  /** Stop ids (default: generation_config's, else config.json's eos_token_id). */
  eosTokenId?: number | number[];
  /** Called with each new token as soon as it is chosen (streaming). */
  onToken?: (id: number) => void;
}

/** The part of a causal LM that generation needs. */
export interface Decoder {
  backend: Backend;
  generationConfig: GenerationDefaults;
  config: { eosTokenIds: number[]; vocabSize: number };
  newCache(batch: number, capacity: number): KvCache;
  forward(ids: Int32Array, batch: number, cache: KvCache, logitsFor: 'last' | 'all'): Tensor<'f32'>;
}

interface Resolved {
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  eos: Set<number>;
}

function resolve(model: Decoder, opts: GenerateOptions): Resolved {
  const g = model.generationConfig;
  const temperature = opts.temperature ?? (g.doSample === true ? g.temperature ?? 1 : 0);
  const r: Resolved = {
    maxNewTokens: opts.maxNewTokens ?? g.maxNewTokens ?? 20,
    temperature,
    topK: opts.topK ?? g.topK ?? 0,
    topP: opts.topP ?? g.topP ?? 1,
    seed: opts.seed ?? 0,
    eos: new Set(opts.eosTokenId === undefined ? g.eosTokenIds ?? model.config.eosTokenIds : [opts.eosTokenId].flat()),
  };
  const bad = (field: string, allowed: string): never => {
    throw new ConfigError(`generate: ${field} must be ${allowed}`, `pass a valid ${field}`);
  };
  if (!Number.isInteger(r.maxNewTokens) || r.maxNewTokens < 0) bad('maxNewTokens', 'a non-negative integer');
  if (!(r.temperature >= 0)) bad('temperature', '>= 0 (0 = greedy)');
  if (!Number.isInteger(r.topK) || r.topK < 0) bad('topK', 'a non-negative integer (0 = no limit)');
  if (!(r.topP > 0 && r.topP <= 1)) bad('topP', 'in (0, 1]');
  return r;
}

/** Generates after inputIds and returns prompt + new tokens. */
export function generate(model: Decoder, inputIds: readonly number[], opts: GenerateOptions = {}): number[] {
  const o = resolve(model, opts);
  if (inputIds.length === 0) throw new ConfigError('generate: inputIds is empty', 'pass at least one token (e.g. the BOS id)');
  for (const id of inputIds) {
    if (!Number.isInteger(id) || id < 0 || id >= model.config.vocabSize) {
      throw new ConfigError(`generate: token id ${id} is outside the vocabulary (0..${model.config.vocabSize - 1})`, 'encode the prompt with this model\'s tokenizer');
    }
  }
  const rng = new Rng(o.seed);
  const cache = model.newCache(1, inputIds.length + o.maxNewTokens);
  const out = [...inputIds];
  try {
    let next = Int32Array.from(inputIds);
    for (let step = 0; step < o.maxNewTokens; step++) {
      const id = scope(() => pick(model, model.forward(next, 1, cache, 'last'), o, rng));
      out.push(id);
      opts.onToken?.(id);
      if (o.eos.has(id)) break;
      next = Int32Array.of(id);
    }
  } finally {
    cache.release();
  }
  return out;
}

// logits (1, V) -> next token id
function pick(model: Decoder, logits: Tensor<'f32'>, o: Resolved, rng: Rng): number {
  if (o.temperature === 0) return model.backend.argmax(logits)[0] ?? 0;
  const probs = model.backend.softmax(logits, o.temperature);
  return sampleFrom(probs.data, o.topK, o.topP, rng);
}
