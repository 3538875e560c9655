// Decode A/B in one process: two bench models (src/bench/generate-bench.ts) decode in
// alternating rounds, so both see the same machine state, and the ratio of each round's
// rates is reported with its median. Separate `ftune bench --generate` runs on a shared
// machine spread +-10% from run to run, more than the effects the decode targets are
// about (unmerged LoRA within 10% of merged; 4-bit at least as fast as bf16).
// Run: node dist/bench/decode-ab.js [--preset medium] [--a bf16] [--b nf4] [--rounds 8]
//      [--new-tokens 64] [--r 16]    (--a/--b: f32|bf16|nf4, or merged|unmerged for a
//      bf16 model with an all-linear LoRA adapter of rank --r)
import { benchPrompt, buildDecodeModel, timeDecode, type GenerateBenchOptions } from '../src/bench/generate-bench.js';
import { preset } from '../src/bench/presets.js';
import { ConfigError } from '../src/errors.js';
import { QLORA_PRESET } from '../src/quant/config.js';
import { arg, median } from './util.js';

function options(variant: string): GenerateBenchOptions {
  const presetName = arg('--preset') ?? 'medium';
  const lora = variant === 'merged' || variant === 'unmerged' ? variant : 'none';
  const weights = lora !== 'none' ? 'bf16' : variant;
  if (weights !== 'f32' && weights !== 'bf16' && weights !== 'nf4') throw new ConfigError(`--a/--b ${variant} is not a decode variant`, 'use f32, bf16, nf4, merged or unmerged');
  return {
    preset: preset(presetName), presetName, weights, lora, r: Number(arg('--r') ?? 16), targetModules: 'all-linear',
    promptTokens: 16, newTokens: Number(arg('--new-tokens') ?? 64), seed: 0, bnb: QLORA_PRESET,
  };
}

const [nameA, nameB] = [arg('--a') ?? 'merged', arg('--b') ?? 'unmerged'];
const rounds = Number(arg('--rounds') ?? 8);
const a = options(nameA), b = options(nameB);
const models = { a: buildDecodeModel(a), b: buildDecodeModel(b) };
const prompt = benchPrompt(a);
timeDecode(models.a, prompt, 4);
timeDecode(models.b, prompt, 4);
const rates: { a: number[]; b: number[] } = { a: [], b: [] };
for (let i = 0; i < rounds; i++) {
  for (const k of i % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const)) rates[k].push(timeDecode(models[k], prompt, a.newTokens).tokensPerS);
}
const ratios = rates.b.map((r, i) => r / (rates.a[i] ?? NaN));
const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(1)).join(' ');
console.log(JSON.stringify({
  bench: 'ftune-decode-ab', preset: a.presetName, a: nameA, b: nameB, rounds, new_tokens: a.newTokens,
  a_tokens_per_s: Math.round(median(rates.a) * 10) / 10, b_tokens_per_s: Math.round(median(rates.b) * 10) / 10,
  b_over_a: Math.round(median(ratios) * 1000) / 1000, b_over_a_rounds: ratios.map((r) => Math.round(r * 1000) / 1000),
  a_rounds: fmt(rates.a), b_rounds: fmt(rates.b),
}));
