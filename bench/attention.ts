// Attention benchmark: causal GQA attention forward and backward, ms and GFLOP/s per ISA,
// at the shape of the `medium` bench preset's layer (B=4, T=S=512, H=Hkv=12, D=64) and
// one GQA shape (H = 4 Hkv). FLOPs count only the causal window: forward 4 D per visible
// (query, key) pair (q.k and p v), backward 10 D (scores recomputed, dP, dQ, dK, dV).
// --decode measures instead one query row per head against a long KV cache (T=1,
// S=2048 < Smax), as generation calls it. Median of REPS timed runs after a warm-up.
// --bf16 runs the autocast kernels (bf16 products where the CPU has avx512_bf16).
// Run: node dist/bench/attention.js [--isa avx512] [--reps 7] [--threads 2] [--decode] [--bf16]
import { Tensor } from '../src/tensor/tensor.js';
import { scope } from '../src/tensor/scope.js';
import { native, setIsa, supportedIsas, type Isa } from '../src/backend/native/addon.js';
import { nativeNn } from '../src/backend/native/nn.js';
import { nativeGrad } from '../src/backend/native/grad.js';
import { arg, median } from './util.js';

interface Shape {
  B: number;
  T: number;
  H: number;
  Hkv: number;
  D: number;
  S: number;
  Smax: number;
}

/** Visible (query, key) pairs of all heads: query t sees S - T + t + 1 keys. */
function pairs(s: Shape): number {
  let n = 0;
  for (let t = 0; t < s.T; t++) n += s.S - s.T + t + 1;
  return n * s.B * s.H;
}

function fill(n: number, salt: number): Float32Array {
  return new Float32Array(n).map((_, i) => (((i + salt) * 7919) % 1000) / 500 - 1);
}

/** Median seconds of forward and backward over `reps` runs each. */
function measure(s: Shape, reps: number, backward: boolean, bf16: boolean): [number, number] {
  return scope(() => {
    const nq = s.B * s.T * s.H * s.D, nkv = s.B * s.Smax * s.Hkv * s.D;
    const q = Tensor.from([s.B, s.T, s.H, s.D], 'f32', fill(nq, 1));
    const k = Tensor.from([s.B, s.Smax, s.Hkv, s.D], 'f32', fill(nkv, 2));
    const v = Tensor.from([s.B, s.Smax, s.Hkv, s.D], 'f32', fill(nkv, 3));
    const dy = Tensor.from([s.B, s.T, s.H, s.D], 'f32', fill(nq, 4));
    const scale = 1 / Math.sqrt(s.D);
    const time = (fn: () => void): number => {
      fn();
      const times: number[] = [];
      for (let r = 0; r < reps; r++) {
        const t0 = process.hrtime.bigint();
        scope(fn);
        times.push(Number(process.hrtime.bigint() - t0) / 1e9);
      }
      return median(times);
    };
    const fwd = time(() => void nativeNn.attention(q, k, v, s.S, scale, bf16));
    const bwd = backward ? time(() => void nativeGrad.attentionBackward(q, k, v, s.S, scale, dy, bf16)) : NaN;
    return [fwd, bwd];
  });
}

const reps = Number(arg('--reps') ?? 7);
native().setThreads(Number(arg('--threads') ?? 2));
const isaArg = arg('--isa');
const isas: Isa[] = isaArg ? [isaArg as Isa] : supportedIsas().filter((i) => i !== 'scalar');
const decode = process.argv.includes('--decode'), bf16 = process.argv.includes('--bf16');
const shapes: Shape[] = decode
  ? [{ B: 1, T: 1, H: 12, Hkv: 12, D: 64, S: 2048, Smax: 4096 }, { B: 1, T: 1, H: 32, Hkv: 8, D: 128, S: 2048, Smax: 4096 }]
  : [{ B: 4, T: 512, H: 12, Hkv: 12, D: 64, S: 512, Smax: 512 }, { B: 4, T: 512, H: 16, Hkv: 4, D: 64, S: 512, Smax: 512 }];
process.stdout.write(`${'shape'.padEnd(36)}${'isa'.padEnd(8)}${'fwd ms'.padStart(9)}${'GF/s'.padStart(8)}${'bwd ms'.padStart(9)}${'GF/s'.padStart(8)}\n`);
for (const s of shapes) {
  for (const isa of isas) {
    setIsa(isa);
    const [f, b] = measure(s, reps, !decode, bf16);
    const p = pairs(s) * s.D;
    const name = `B${s.B} T${s.T} S${s.S} H${s.H}/${s.Hkv} D${s.D}`;
    const cols = [f * 1e3, (4 * p) / f / 1e9, b * 1e3, (10 * p) / b / 1e9];
    const cells = cols.map((x, i) => (Number.isNaN(x) ? '-' : x.toFixed(decode && i % 2 === 0 ? 3 : 1)).padStart(i % 2 === 0 ? 9 : 8));
    process.stdout.write(`${name.padEnd(36)}${isa.padEnd(8)}${cells.join('')}\n`);
  }
}
