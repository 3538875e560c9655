// GEMM benchmark: GFLOP/s per ISA for f32 and bf16 at 2048^3 and at the LLM shapes of a
// 768-wide model over 2048 tokens: forward x W^T (NT), and the backward products
// dX = dY W (NN) and dW = dY^T X (TN). Median of REPS timed runs after a warm-up, on
// THREADS threads. Run: node dist/bench/gemm.js [--isa avx512] [--reps 7]
// (bench/openblas_gemm.py measures numpy/OpenBLAS on the same shapes; bench/RESULTS.md.)
import { Tensor } from '../src/tensor/tensor.js';
import { scope } from '../src/tensor/scope.js';
import { activeIsa, native, setIsa, supportedIsas, type Isa } from '../src/backend/native/addon.js';
import { gemmInto, type GemmSpec } from '../src/backend/native/gemm.js';

const THREADS = 2;

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

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** Median GFLOP/s of `reps` runs of one product. */
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
    return (2 * M * N * K) / median(times) / 1e9;
  });
}

function main(): void {
  const reps = Number(arg('--reps') ?? 7);
  const only = arg('--isa');
  const isas = supportedIsas().filter((i): i is Isa => i !== 'scalar' && (only === undefined || i === only));
  const before = activeIsa(), threads = native().threads();
  native().setThreads(THREADS);
  const f = native().cpuFeatures();
  process.stdout.write(`gemm benchmark: ${THREADS} threads, median of ${reps}, avx512bf16=${f.avx512bf16} (scalar reference skipped: too slow at these sizes)\n`);
  process.stdout.write(`${'shape'.padEnd(30)}${'isa'.padEnd(8)}${'f32 GF/s'.padStart(10)}${'bf16 GF/s'.padStart(11)}${'bf16/f32'.padStart(10)}\n`);
  try {
    for (const s of shapes()) {
      for (const isa of isas) {
        setIsa(isa);
        const g32 = measure(s.spec, 'f32', reps), g16 = measure(s.spec, 'bf16', reps);
        process.stdout.write(`${s.name.padEnd(30)}${isa.padEnd(8)}${g32.toFixed(1).padStart(10)}${g16.toFixed(1).padStart(11)}${(g16 / g32).toFixed(2).padStart(10)}\n`);
      }
    }
  } finally {
    setIsa(before);
    native().setThreads(threads);
  }
}

main();
