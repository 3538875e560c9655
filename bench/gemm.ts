// GEMM benchmark: GFLOP/s per ISA for f32 and bf16 at 2048^3 and at the LLM shapes of a
// 768-wide model over 2048 tokens: forward x W^T (NT), and the backward products
// dX = dY W (NN) and dW = dY^T X (TN). Median of REPS timed runs after a warm-up, on
// THREADS threads. Run: node dist/bench/gemm.js [--isa avx512] [--reps 7] [--threads 2] [--decode [--m 1]]
// --decode measures instead the one-token products of generation, y (1,N) = x (1,K) W(N,K)^T
// (M=1 NT, and --m M for a few tokens), reporting GB/s of weight traffic next to GFLOP/s.
// --q4 measures the fused 4-bit (NF4, blocksize 64, double quant) linear layer instead:
// y = x W^T with W decoded inside the product, f32 and bf16 compute, next to dense f32 and
// bf16 W, at M=2048 (prefill/training) and with --decode at M=1 (--m M).
// (bench/openblas_gemm.py measures numpy/OpenBLAS on the same shapes; bench/RESULTS.md.)
import { Tensor } from '../src/tensor/tensor.js';
import { scope } from '../src/tensor/scope.js';
import { activeIsa, native, setIsa, supportedIsas, type Isa } from '../src/backend/native/addon.js';
import { gemmInto, type GemmSpec } from '../src/backend/native/gemm.js';
import { nativeQuant } from '../src/backend/native/quant.js';
import type { Q4WeightArgs } from '../src/backend/native/addon-quant.js';
import { arg, median } from './util.js';


interface Shape {
  name: string;
  spec: GemmSpec;
}

/** 2048^3 plus, for each (K -> N) layer, its forward and two backward products. */
function shapes(): Shape[] {
  const T = 2048;
  const out: Shape[] = [{ name: 'square 2048^3 NN', spec: { M: 2048, N: 2048, K: 2048 } }];
  for (const [K, N] of [[768, 768], [768, 2048], [2048, 768]] as const) {
    out.push({ name: `fwd  y=xW^T  ${K}->${N} NT`, spec: { M: T, N, K, transB: true } });
    out.push({ name: `bwd dX=dY W  ${K}->${N} NN`, spec: { M: T, N: K, K: N } });
    out.push({ name: `bwd dW=dY^TX ${K}->${N} TN`, spec: { M: N, N: K, K: T, transA: true } });
  }
  return out;
}

/** Decode shapes (K -> N) of 768-wide and 4096-wide (7B) models; M tokens. */
function decodeShapes(M: number): Shape[] {
  const layers = [[768, 768], [2048, 768], [768, 2048], [4096, 4096], [4096, 11008]] as const;
  return layers.map(([K, N]) => ({ name: `decode M=${M} ${K}->${N} NT`, spec: { M, N, K, transB: true } }));
}

/** Median seconds of `reps` runs of one product. */
function measure(spec: GemmSpec, dtype: 'f32' | 'bf16', reps: number): number {
  return scope(() => {
    const { M, N, K } = spec;
    const fill = (n: number): Tensor => {
      const v = new Float32Array(n).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
      if (dtype === 'f32') return Tensor.from([n], 'f32', v);
      const t = Tensor.zeros([n], 'bf16');
      native().castF32ToBf16(v, t.data, n);
      return t;
    };
    const a = fill(M * K), b = fill(K * N), c = Tensor.zeros([M * N], 'f32');
    gemmInto(c, a, b, spec);
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = process.hrtime.bigint();
      gemmInto(c, a, b, spec);
      times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    return median(times);
  });
}

const gflops = (s: GemmSpec, secs: number): number => (2 * s.M * s.N * s.K) / secs / 1e9;

/** Decode table: weight GB/s (N*K*bytes / time) and GFLOP/s, f32 and bf16 W. */
function decode(isas: Isa[], reps: number): void {
  const M = Number(arg('--m') ?? 1);
  process.stdout.write(`${'shape'.padEnd(30)}${'isa'.padEnd(8)}${'f32 GB/s'.padStart(10)}${'GF/s'.padStart(8)}${'us'.padStart(9)}${'bf16 GB/s'.padStart(11)}${'GF/s'.padStart(8)}${'us'.padStart(9)}\n`);
  for (const s of decodeShapes(M)) {
    for (const isa of isas) {
      setIsa(isa);
      const t32 = measure(s.spec, 'f32', reps), t16 = measure(s.spec, 'bf16', reps);
      const w = s.spec.N * s.spec.K;
      const cols = [(4 * w) / t32 / 1e9, gflops(s.spec, t32), t32 * 1e6, (2 * w) / t16 / 1e9, gflops(s.spec, t16), t16 * 1e6];
      const widths = [10, 8, 9, 11, 8, 9];
      process.stdout.write(`${s.name.padEnd(30)}${isa.padEnd(8)}${cols.map((v, i) => v.toFixed(1).padStart(widths[i] ?? 8)).join('')}\n`);
    }
  }
}

/** Median seconds of the fused 4-bit product y (M,N) = x (M,K) W^T, x f32 or bf16 (pre-cast). */
function measureQ4(spec: GemmSpec, compute: 'f32' | 'bf16', reps: number): number {
  return scope(() => {
    const { M, N, K } = spec;
    const v = new Float32Array(N * K).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
    const q = nativeQuant.quantize4bit(Tensor.from([N, K], 'f32', v), { quantType: 'nf4', blocksize: 64, doubleQuant: true });
    const n = q.nested;
    if (n === undefined) throw new Error('double quant expected');
    const args: Q4WeightArgs = {
      codes: q.codes.data, map: q.quantMap, absmax: null, nestedCodes: n.codes.data, nestedAbsmax: n.absmax.data,
      nestedMap: n.quantMap, offset: n.offset, N, K, blocksize: q.blocksize, nestedBlocksize: n.blocksize,
    };
    const xf = new Float32Array(M * K).map((_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
    const x = compute === 'f32' ? xf : new Uint16Array(M * K);
    if (x instanceof Uint16Array) native().castF32ToBf16(xf, x, M * K);
    const y = new Float32Array(M * N);
    native().q4Linear(args, x, null, y, M);
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = process.hrtime.bigint();
      native().q4Linear(args, x, null, y, M);
      times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    for (const t of [q.codes, n.codes, n.absmax]) t.release();
    return median(times);
  });
}

/** 4-bit table: GFLOP/s (and, for decode, weight GB/s of the 4-bit bytes) next to dense f32 and bf16. */
function q4(isas: Isa[], reps: number, decodeMode: boolean): void {
  const M = decodeMode ? Number(arg('--m') ?? 1) : 2048;
  const layers = decodeMode ? [[768, 768], [2048, 768], [768, 2048], [4096, 4096], [4096, 11008]] : [[768, 768], [768, 2048], [2048, 768], [4096, 4096]];
  const head = decodeMode ? ['f32 us', 'bf16 us', 'q4f32 us', 'q4bf16 us', 'q4 GB/s'] : ['f32 GF/s', 'bf16 GF/s', 'q4f32 GF/s', 'q4bf16 GF/s'];
  process.stdout.write(`${'shape'.padEnd(30)}${'isa'.padEnd(8)}${head.map((h) => h.padStart(12)).join('')}\n`);
  for (const [K = 0, N = 0] of layers) {
    const spec: GemmSpec = { M, N, K, transB: true };
    for (const isa of isas) {
      setIsa(isa);
      const t = [measure(spec, 'f32', reps), measure(spec, 'bf16', reps), measureQ4(spec, 'f32', reps), measureQ4(spec, 'bf16', reps)];
      const bytes4 = N * K * (0.5 + 1 / 64);  // codes + 8-bit absmax per 64
      const cols = decodeMode ? [...t.map((s) => s * 1e6), bytes4 / Math.min(t[2] ?? 1, t[3] ?? 1) / 1e9] : t.map((s) => gflops(spec, s));
      process.stdout.write(`${`${decodeMode ? 'decode' : 'fwd'} M=${M} ${K}->${N} NT`.padEnd(30)}${isa.padEnd(8)}${cols.map((c) => c.toFixed(1).padStart(12)).join('')}\n`);
    }
  }
}

function main(): void {
  const reps = Number(arg('--reps') ?? 7);
  const only = arg('--isa');
  const isas = supportedIsas().filter((i): i is Isa => i !== 'scalar' && (only === undefined || i === only));
  const THREADS = Number(arg('--threads') ?? 2);
  const before = activeIsa(), threads = native().threads();
  native().setThreads(THREADS);
  const f = native().cpuFeatures();
  process.stdout.write(`gemm benchmark: ${THREADS} threads, median of ${reps}, avx512bf16=${f.avx512bf16} (scalar reference skipped: too slow at these sizes)\n`);
  if (process.argv.includes('--q4')) {
    try {
      q4(isas, reps, process.argv.includes('--decode'));
    } finally {
      setIsa(before);
      native().setThreads(threads);
    }
    return;
  }
  if (process.argv.includes('--decode')) {
    try {
      decode(isas, reps);
    } finally {
      setIsa(before);
      native().setThreads(threads);
    }
    return;
  }
  process.stdout.write(`${'shape'.padEnd(30)}${'isa'.padEnd(8)}${'f32 GF/s'.padStart(10)}${'bf16 GF/s'.padStart(11)}${'bf16/f32'.padStart(10)}\n`);
  try {
    for (const s of shapes()) {
      for (const isa of isas) {
        setIsa(isa);
        const g32 = gflops(s.spec, measure(s.spec, 'f32', reps)), g16 = gflops(s.spec, measure(s.spec, 'bf16', reps));
        process.stdout.write(`${s.name.padEnd(30)}${isa.padEnd(8)}${g32.toFixed(1).padStart(10)}${g16.toFixed(1).padStart(11)}${(g16 / g32).toFixed(2).padStart(10)}\n`);
      }
    }
  } finally {
    setIsa(before);
    native().setThreads(threads);
  }
}

main();
