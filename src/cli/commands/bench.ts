// `ftune bench`: one training benchmark run on a preset shared with the PyTorch anchor
// (../shared/bench/torch_anchor.py); one JSON line on stdout. Compare runs made one
// right after the other on the same machine, as ratios.
import { runTrainBench } from '../../bench/train-bench.js';
import { runGenerateBench } from '../../bench/generate-bench.js';
import { preset } from '../../bench/presets.js';
import { ConfigError } from '../../errors.js';
import { QLORA_PRESET } from '../../quant/config.js';
import { numberFlag, type Command } from '../command.js';

const SHORT: Record<string, string> = { q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj', gate: 'gate_proj', up: 'up_proj', down: 'down_proj' };

/** "all-linear" / "all", or a list in HF (q_proj) or the anchor's short (q) names. */
export function benchTargets(value: string): string[] | 'all-linear' {
  if (value === 'all-linear' || value === 'all') return 'all-linear';
  return value.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => SHORT[s] ?? s);
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'benchmark training steps on a preset shape (random weights), as the PyTorch anchor does',
  usage: 'ftune bench --preset tiny|small|medium|large --method full|lora|qlora [--r N] [--target-modules LIST|all-linear] [--batch N] [--seq N] [--steps N] [--warmup N] [--bf16] [--gradient-checkpointing | --no-gradient-checkpointing]\n       ftune bench --generate --preset NAME [--weights f32|bf16|nf4] [--lora none|merged|unmerged] [--new-tokens N]',
  flags: {
    preset: { type: 'string', arg: 'NAME', help: 'tiny, small, medium or large (shapes of torch_anchor.py)', default: 'tiny' },
    method: { type: 'string', arg: 'full|lora|qlora', help: 'what is trained', default: 'full' },
    r: { type: 'string', arg: 'N', help: 'LoRA rank (alpha = 2r, as the anchor)', default: '8' },
    'target-modules': { type: 'string', arg: 'LIST', help: 'q,v / q_proj,v_proj / all-linear', default: 'q,v' },
    batch: { type: 'string', arg: 'N', help: 'sequences per step', default: '8' },
    seq: { type: 'string', arg: 'N', help: 'tokens per sequence (default: the preset\'s)' },
    steps: { type: 'string', arg: 'N', help: 'timed steps', default: '5' },
    warmup: { type: 'string', arg: 'N', help: 'untimed steps first', default: '2' },
    bf16: { type: 'boolean', help: 'bf16 inputs to the matmuls and attention products, f32 accumulation (LoRA: bf16 frozen base)' },
    'gradient-checkpointing': { type: 'boolean', help: 'recompute each layer in backward (default on for qlora)' },
    'no-gradient-checkpointing': { type: 'boolean', help: 'turn checkpointing off for qlora' },
    seed: { type: 'string', arg: 'N', help: 'seed of weights and tokens', default: '0' },
    generate: { type: 'boolean', help: 'measure decode tokens/s instead of training steps' },
    weights: { type: 'string', arg: 'f32|bf16|nf4', help: '--generate: weight format (nf4: 4-bit linears, bf16 embeddings and head, as a QLoRA base loaded in bf16)', default: 'f32' },
    lora: { type: 'string', arg: 'none|merged|unmerged', help: '--generate: with a LoRA adapter (rank --r, --target-modules)', default: 'none' },
    'prompt-tokens': { type: 'string', arg: 'N', help: '--generate: prompt length', default: '16' },
    'new-tokens': { type: 'string', arg: 'N', help: '--generate: tokens generated', default: '64' },
  },
  run(values, io) {
    const cmd = 'bench';
    const method = values['method'];
    if (method !== 'full' && method !== 'lora' && method !== 'qlora') throw new ConfigError(`--method ${String(method)} is not supported`, 'use full, lora or qlora');
    const int = (name: string, dflt: number, min = 1): number => numberFlag(values, cmd, name, `an integer >= ${min}`, (n) => Number.isInteger(n) && n >= min) ?? dflt;
    const p = { ...preset(String(values['preset'])) };
    p.seq = int('seq', p.seq);
    if (values['generate'] === true) {
      const weights = String(values['weights']);
      const lora = String(values['lora']);
      if (weights !== 'f32' && weights !== 'bf16' && weights !== 'nf4') throw new ConfigError(`--weights ${weights} is not supported`, 'use f32, bf16 or nf4');
      if (lora !== 'none' && lora !== 'merged' && lora !== 'unmerged') throw new ConfigError(`--lora ${lora} is not supported`, 'use none, merged or unmerged');
      io.stdout(`${JSON.stringify(runGenerateBench({
        preset: p, presetName: String(values['preset']), weights, lora, r: int('r', 8), targetModules: benchTargets(String(values['target-modules'])),
        promptTokens: int('prompt-tokens', 16), newTokens: int('new-tokens', 64, 2), seed: int('seed', 0, 0), bnb: QLORA_PRESET,
      }))}\n`);
      return;
    }
    const result = runTrainBench({
      preset: p, presetName: String(values['preset']), method, r: int('r', 8), targetModules: benchTargets(String(values['target-modules'])),
      batch: int('batch', 8), steps: int('steps', 5), warmup: int('warmup', 2, 0), bf16: values['bf16'] === true,
      gradientCheckpointing: values['gradient-checkpointing'] === true || (method === 'qlora' && values['no-gradient-checkpointing'] !== true),
      seed: int('seed', 0, 0), bnb: QLORA_PRESET,
    });
    io.stdout(`${JSON.stringify(result)}\n`);
  },
};
