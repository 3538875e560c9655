// Per-op profile of one training-bench step: wraps every nativeBackend method with a
// wall-clock timer and a process CPU-time counter (all threads: steadier than wall time
// on a shared machine), runs runTrainBench (src/bench/train-bench.ts) and prints each
// op's total wall and CPU milliseconds, call count and share of the backend's CPU time.
// linear/matmul/matmulInto keys carry the operand dtypes (and TA/TB for transposes), so
// the bf16 products show apart from the f32 ones. Nested calls count in both (a backend
// method calling another one); the shares are what matter on a shared machine.
// One warm-up step runs first, unprofiled (first touches of gradient and optimizer pages).
// Run: node dist/bench/profile-ops.js [--preset medium] [--method lora|full|qlora]
//      [--targets all|qv] [--bf16] [--batch 4] [--steps 1] [--top 24] [--shapes]
import { nativeBackend } from '../src/backend/index.js';
import { runTrainBench } from '../src/bench/train-bench.js';
import { preset } from '../src/bench/presets.js';
import { QLORA_PRESET } from '../src/quant/config.js';
import { arg as argOf } from './util.js';

function arg(name: string, dflt: string): string {
  return argOf(name) ?? dflt;
}

/** A short label for a tensor-like argument: its dtype, or '' for anything else. */
function dtypeOf(x: unknown): string {
  return typeof x === 'object' && x !== null && 'dtype' in x && typeof x.dtype === 'string' ? x.dtype : '';
}

function transLabel(x: unknown): string {
  if (typeof x !== 'object' || x === null) return '';
  return ('transA' in x && x.transA === true ? 'TA' : '') + ('transB' in x && x.transB === true ? 'TB' : '');
}

/** With --shapes: the operand shapes of a product, e.g. [2048x768]x[768x768]. */
const SHAPES = process.argv.includes('--shapes');
function shapeOf(...xs: unknown[]): string {
  if (!SHAPES) return '';
  const one = (x: unknown): string => (typeof x === 'object' && x !== null && 'shape' in x && Array.isArray(x.shape) ? x.shape.join('x') : '?');
  return ` [${xs.map(one).join('][')}]`;
}

/** Op name plus operand dtypes for the products (and shapes with --shapes). */
function keyOf(name: string, args: unknown[]): string {
  if (name === 'linear') return `linear:${dtypeOf(args[0])}x${dtypeOf(args[1])}${shapeOf(args[0], args[1])}`;
  if (name === 'matmul') return `matmul:${dtypeOf(args[0])}x${dtypeOf(args[1])}${transLabel(args[2])}${shapeOf(args[0], args[1])}`;
  if (name === 'matmulInto') return `matmulInto:${dtypeOf(args[1])}x${dtypeOf(args[2])}${transLabel(args[3])}${shapeOf(args[1], args[2])}`;
  if (name === 'matmulBf16Into') return `matmulBf16Into${transLabel(args[3])}${shapeOf(args[1], args[2])}`;
  if (name === 'cast') return `cast:${dtypeOf(args[0])}->${String(args[1])}${shapeOf(args[0])}`;
  return name;
}

const times = new Map<string, { ms: number; cpu: number; calls: number }>();
const cpuMs = (): number => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
for (const [name, f] of Object.entries(nativeBackend)) {
  if (typeof f !== 'function') continue;
  Reflect.set(nativeBackend, name, function timed(this: unknown, ...args: unknown[]): unknown {
    const t0 = performance.now(), c0 = cpuMs();
    const r: unknown = f.apply(this, args);
    const key = keyOf(name, args);
    const v = times.get(key) ?? { ms: 0, cpu: 0, calls: 0 };
    v.ms += performance.now() - t0;
    v.cpu += cpuMs() - c0;
    v.calls++;
    times.set(key, v);
    return r;
  });
}

const presetName = arg('--preset', 'medium');
const method = arg('--method', 'lora');
if (method !== 'lora' && method !== 'full' && method !== 'qlora') throw new Error(`--method ${method}: use lora, full or qlora`);
const targets = arg('--targets', 'all');
const t0 = performance.now();
const r = runTrainBench({
  preset: { ...preset(presetName) }, presetName, method, r: Number(arg('--r', '16')),
  targetModules: targets === 'all' ? 'all-linear' : ['q_proj', 'v_proj'], batch: Number(arg('--batch', '4')),
  steps: Number(arg('--steps', '1')), warmup: 1, bf16: process.argv.includes('--bf16'),
  gradientCheckpointing: method === 'qlora' && !process.argv.includes('--no-gradient-checkpointing'), seed: 0, bnb: QLORA_PRESET,
  // The first step touches every page of the gradients and optimizer state (and fills
  // the caching pool): profile the steps after it only.
  onStepEnd: (step) => { if (step === 0) times.clear(); },
});
const wall = performance.now() - t0;
console.log(JSON.stringify({ tokens_per_s: r['tokens_per_s'], step_ms: r['step_ms'], wall_ms: Math.round(wall) }));
const total = [...times.values()].reduce((a, v) => a + v.cpu, 0);
const rows = [...times.entries()].sort((a, b) => b[1].cpu - a[1].cpu).slice(0, Number(arg('--top', '24')));
console.log(`${'op'.padEnd(SHAPES ? 52 : 30)} ${'wall ms'.padStart(8)} ${'cpu ms'.padStart(8)} ${'calls'.padStart(6)} cpu share`);
for (const [k, v] of rows) {
  console.log(`${k.padEnd(SHAPES ? 52 : 30)} ${v.ms.toFixed(0).padStart(8)} ${v.cpu.toFixed(0).padStart(8)} ${String(v.calls).padStart(6)} ${((100 * v.cpu) / total).toFixed(1).padStart(5)}%`);
}
console.log(`total in backend: ${total.toFixed(0)} ms cpu; ${wall.toFixed(0)} ms wall for the whole run`);
