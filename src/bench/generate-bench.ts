// Decode benchmark: tokens/s of greedy generation on a preset with random weights, for
// f32, bf16 and 4-bit (NF4) weights, and with a LoRA adapter merged or unmerged.
import { nativeBackend } from '../backend/index.js';
import { LlamaForCausalLM } from '../models/llama/model.js';
import { getPeftModel } from '../peft/index.js';
import type { BitsAndBytesConfig } from '../quant/config.js';
import { scope } from '../tensor/scope.js';
import { Rng } from '../util/rng.js';
import { presetConfig, type Preset } from './presets.js';
import { randomQuant, randomSource } from './random-weights.js';

export type DecodeWeights = 'f32' | 'bf16' | 'nf4';

export interface GenerateBenchOptions {
  preset: Preset;
  presetName: string;
  weights: DecodeWeights;
  /** Attach a LoRA adapter (random B so it is not a no-op): none, merged or unmerged. */
  lora: 'none' | 'merged' | 'unmerged';
  r: number;
  targetModules: string[] | 'all-linear';
  promptTokens: number;
  newTokens: number;
  seed: number;
  bnb: BitsAndBytesConfig;
}

/** Anything that decodes greedily: a model, a PEFT model, or a merged one. */
export interface Decoder {
  generate: LlamaForCausalLM['generate'];
}

/** The bench model of `o`: random weights (seeded), with its LoRA adapter merged or not. */
export function buildDecodeModel(o: GenerateBenchOptions): Decoder {
  const cfg = presetConfig(o.preset);
  const base = new LlamaForCausalLM(cfg, randomSource(o.seed, o.weights === 'f32' ? 'f32' : 'bf16'), nativeBackend,
    o.weights === 'nf4' ? randomQuant(o.seed, o.bnb) : undefined);
  if (o.lora === 'none') return base;
  const peft = getPeftModel(base, { r: o.r, loraAlpha: 2 * o.r, targetModules: o.targetModules, initLoraWeights: 'gaussian' }, 'default', { seed: o.seed });
  const rng = new Rng(o.seed + 7);
  for (const [, l] of peft.loraLayers()) {
    const b = l.lora_B['default']?.weight;
    if (b !== undefined) b.data.set(rng.normals(b.size, 0.01));
  }
  return o.lora === 'merged' ? peft.mergeAndUnload() : peft;
}

/** The bench prompt: `promptTokens` seeded random ids. */
export function benchPrompt(o: GenerateBenchOptions): number[] {
  const rng = new Rng(o.seed + 1);
  return Array.from({ length: o.promptTokens }, () => rng.int(o.preset.vocab));
}

/**
 * Greedy decode of `newTokens` after `prompt`: the prefill time (to the first token) and
 * the decode rate over the tokens after the first.
 */
export function timeDecode(model: Decoder, prompt: number[], newTokens: number): { prefillMs: number; tokensPerS: number } {
  let first = 0;
  let last = 0;
  const t0 = performance.now();
  scope(() => model.generate(prompt, {
    maxNewTokens: newTokens, temperature: 0, eosTokenId: [],
    onToken: () => {
      const now = performance.now();
      if (first === 0) first = now;
      last = now;
    },
  }));
  return { prefillMs: first - t0, tokensPerS: (newTokens - 1) / ((last - first) / 1000) };
}

export function runGenerateBench(o: GenerateBenchOptions): Record<string, unknown> {
  const model = buildDecodeModel(o);
  const prompt = benchPrompt(o);
  timeDecode(model, prompt, 2); // warm-up
  const t = timeDecode(model, prompt, o.newTokens);
  return {
    bench: 'ftune-generate', preset: o.presetName, weights: o.weights, lora: o.lora, r: o.lora === 'none' ? null : o.r,
    prompt_tokens: o.promptTokens, new_tokens: o.newTokens,
    prefill_ms: Math.round(t.prefillMs), decode_tokens_per_s: Math.round(t.tokensPerS * 10) / 10,
    peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}
