// `ftune estimate`: the peak memory a training run will need, broken down, without
// allocating it (src/estimate/estimate.ts). A table on stderr, one JSON object on stdout.
import { ConfigError } from '../../errors.js';
import { estimateMemory, ESTIMATE_DEFAULTS, type MemoryBreakdown, type MemoryEstimate, type Method } from '../../estimate/estimate.js';
import { resolveModelConfig } from '../../estimate/model-config.js';
import { CONFIG_NAMES } from '../../models/configs/named.js';
import { numberFlag, required, type Command } from '../command.js';
import { benchTargets } from './bench.js';

const METHODS: readonly Method[] = ['full', 'lora', 'qlora'];
const PARTS: ReadonlyArray<[keyof MemoryBreakdown, string]> = [
  ['runtime', 'runtime (node + addon)'], ['weights', 'weights'], ['lora', 'LoRA parameters'], ['grads', 'gradients'],
  ['optimizer', 'optimizer (AdamW m, v)'], ['activations', 'activations'], ['workspace', 'workspace'],
  ['allocatorCache', 'allocator cache'], ['total', 'total (peak RSS)'],
];

function table(model: string, results: ReadonlyArray<[Method, MemoryEstimate]>): string {
  const head = `${'part'.padEnd(24)}${results.map(([m]) => m.padStart(12)).join('')}`;
  const rows = PARTS.map(([k, label]) => `${label.padEnd(24)}${results.map(([, e]) => `${e.gib[k].toFixed(3)} GiB`.padStart(12)).join('')}`);
  const a = results[0]?.[1].assumptions;
  const ctx = a === undefined ? '' : `batch ${a['batch']}, seq ${a['seq']}`;
  return `ftune estimate: ${model} (${ctx})\n${head}\n${rows.join('\n')}\n`;
}

export const estimateCommand: Command = {
  name: 'estimate',
  summary: 'predict the peak memory of a full / LoRA / QLoRA run from the model config, without allocating it',
  usage: 'ftune estimate --model DIR|config.json|NAME --method full|lora|qlora|all [--batch N] [--seq N] [--r N] [--target-modules LIST|all-linear] [--gradient-checkpointing] [--bf16]',
  flags: {
    model: { type: 'string', arg: 'DIR|FILE|NAME', help: `model directory, config.json, or a name: ${CONFIG_NAMES.join(', ')}` },
    method: { type: 'string', arg: 'full|lora|qlora|all', help: 'what is trained (all: the three side by side)', default: 'qlora' },
    batch: { type: 'string', arg: 'N', help: 'sequences per step', default: String(ESTIMATE_DEFAULTS.batch) },
    seq: { type: 'string', arg: 'N', help: 'tokens per sequence', default: String(ESTIMATE_DEFAULTS.seq) },
    r: { type: 'string', arg: 'N', help: 'LoRA rank', default: String(ESTIMATE_DEFAULTS.r) },
    'target-modules': { type: 'string', arg: 'LIST', help: 'q,v / q_proj,v_proj / all-linear', default: 'q,v' },
    'gradient-checkpointing': { type: 'boolean', help: 'recompute each layer in backward (default on for qlora, as ftune bench)' },
    'no-gradient-checkpointing': { type: 'boolean', help: 'turn checkpointing off for qlora' },
    bf16: { type: 'boolean', help: 'bf16 matmuls (lora: bf16 frozen base), as ftune bench --bf16' },
  },
  run(values, io) {
    const cmd = 'estimate';
    const model = required(values, cmd, 'model');
    const m = String(values['method']);
    if (m !== 'all' && !METHODS.includes(m as Method)) throw new ConfigError(`--method ${m} is not supported`, 'use full, lora, qlora or all');
    const int = (name: string, dflt: number): number => numberFlag(values, cmd, name, 'an integer >= 1', (n) => Number.isInteger(n) && n >= 1) ?? dflt;
    const { config, source } = resolveModelConfig(model);
    const methods = m === 'all' ? METHODS : [m as Method];
    const results = methods.map((method): [Method, MemoryEstimate] => [method, estimateMemory(config, {
      method, batch: int('batch', ESTIMATE_DEFAULTS.batch), seq: int('seq', ESTIMATE_DEFAULTS.seq), r: int('r', ESTIMATE_DEFAULTS.r),
      targetModules: benchTargets(String(values['target-modules'])), bf16: values['bf16'] === true,
      gradientCheckpointing: values['gradient-checkpointing'] === true || (method === 'qlora' && values['no-gradient-checkpointing'] !== true),
    })]);
    io.stderr(table(source, results));
    const one = (e: MemoryEstimate): Record<string, unknown> => ({ bytes: e.bytes, gib: e.gib, params: e.params, assumptions: e.assumptions });
    const first = results[0];
    const out = m === 'all' || first === undefined ? { model: source, estimates: Object.fromEntries(results.map(([k, e]) => [k, one(e)])) } : { model: source, ...one(first[1]) };
    io.stdout(`${JSON.stringify(out)}\n`);
  },
};
