// `ftune estimate` against measured peaks: runs `ftune bench ... --steps 1 --warmup 1` for
// each row (a child process each, so every peak RSS is its own) and prints the measured
// peak RSS and accounted activations beside estimateMemory's prediction for the same
// preset and options, as the table in docs/estimate.md.
// Run: npx tsc -p . && node dist/bench/estimate-vs-measured.js [--skip-large]
import { execFileSync } from 'node:child_process';
import { PRESETS, presetConfig } from '../src/bench/presets.js';
import { estimateMemory, type Method } from '../src/estimate/estimate.js';

interface Row {
  preset: string;
  method: Method;
  batch: number;
  bf16?: boolean;
  /** Checkpointing; qlora defaults to on, the others to off. */
  ckpt?: boolean;
  r?: number;
  all?: boolean;
}

const ROWS: Row[] = [
  { preset: 'tiny', method: 'full', batch: 8 }, { preset: 'tiny', method: 'lora', batch: 8 }, { preset: 'tiny', method: 'qlora', batch: 8 },
  { preset: 'small', method: 'full', batch: 8 }, { preset: 'small', method: 'lora', batch: 8 }, { preset: 'small', method: 'qlora', batch: 8 },
  { preset: 'small', method: 'lora', batch: 8, bf16: true }, { preset: 'small', method: 'lora', batch: 8, ckpt: true },
  { preset: 'small', method: 'full', batch: 8, ckpt: true }, { preset: 'small', method: 'lora', batch: 8, r: 16, all: true },
  { preset: 'medium', method: 'full', batch: 4 }, { preset: 'medium', method: 'full', batch: 4, bf16: true },
  { preset: 'medium', method: 'lora', batch: 4, bf16: true, r: 16, all: true }, { preset: 'medium', method: 'qlora', batch: 4, r: 16, all: true },
  { preset: 'medium', method: 'qlora', batch: 4, bf16: true, ckpt: false, r: 16, all: true },
  { preset: 'large', method: 'qlora', batch: 1 }, { preset: 'large', method: 'lora', batch: 1 }, { preset: 'large', method: 'full', batch: 1 },
];

const MIB = 2 ** 20;

function flags(row: Row): string[] {
  const f = ['--preset', row.preset, '--method', row.method, '--batch', String(row.batch), '--r', String(row.r ?? 8)];
  if (row.bf16 === true) f.push('--bf16');
  if (row.all === true) f.push('--target-modules', 'all');
  if (row.method === 'qlora' && row.ckpt === false) f.push('--no-gradient-checkpointing');
  if (row.method !== 'qlora' && row.ckpt === true) f.push('--gradient-checkpointing');
  return f;
}

console.log('| run (bench flags) | measured peak RSS MiB | predicted MiB | error | accounted activations MiB | predicted |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const row of ROWS) {
  if (row.preset === 'large' && process.argv.includes('--skip-large')) continue;
  const f = flags(row);
  const out = execFileSync(process.execPath, ['dist/src/cli/main.js', 'bench', ...f, '--steps', '1', '--warmup', '1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const m = JSON.parse(out) as { peak_rss_mib: number; accounted_peak_mib: { activations: number } };
  const p = PRESETS[row.preset];
  if (p === undefined) throw new Error(`no preset ${row.preset}`);
  const e = estimateMemory(presetConfig(p), {
    method: row.method, batch: row.batch, seq: p.seq, r: row.r ?? 8, targetModules: row.all === true ? 'all-linear' : ['q_proj', 'v_proj'],
    gradientCheckpointing: row.ckpt ?? row.method === 'qlora', bf16: row.bf16 === true,
  });
  const predicted = e.bytes.total / MIB;
  const err = ((predicted - m.peak_rss_mib) / m.peak_rss_mib) * 100;
  console.log(`| \`${f.join(' ')}\` | ${m.peak_rss_mib} | ${Math.round(predicted)} | ${err >= 0 ? '+' : ''}${err.toFixed(1)}% | ${m.accounted_peak_mib.activations.toFixed(1)} | ${Math.round(e.bytes.activations / MIB)} |`);
}
