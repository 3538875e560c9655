// One adapted layer at decode (M = 1): the base product x W^T alone against the whole LoRA
// linear (Backend.lowRankInto with the base: x W^T, x A^T, scale, += h B^T), us per call,
// for the medium preset's three layer shapes. --sets N cycles N copies of W, A and B:
// 1 keeps them in cache, 40 (the default, > 32 MiB of L3) reads them from memory as
// decoding does. Median of --reps rounds of 2,000 calls.
// Run: node dist/bench/lowrank-decode.js [--sets 40] [--r 16] [--reps 3]
import { nativeBackend as be } from '../src/backend/index.js';
import { Tensor } from '../src/tensor/tensor.js';
import { arg, median } from './util.js';

const sets = Number(arg('--sets') ?? 40), R = Number(arg('--r') ?? 16), reps = Number(arg('--reps') ?? 3);
const calls = 2000;
for (const [K, N] of [[768, 768], [768, 2048], [2048, 768]] as const) {
  const x = Tensor.zeros([1, K], 'f32');
  x.data.fill(0.1);
  const weights = Array.from({ length: sets }, () => {
    const w = Tensor.zeros([N, K], 'bf16'), a = Tensor.zeros([R, K], 'f32'), b = Tensor.zeros([N, R], 'f32');
    w.data.fill(0x3c00);
    a.data.fill(0.01);
    b.data.fill(0.01);
    return { w, a, b };
  });
  const h = Tensor.zeros([1, R], 'f32'), y = Tensor.zeros([1, N], 'f32');
  const time = (lora: boolean): number => {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) {
      const { w, a, b } = weights[i % sets] ?? weights[0]!;
      if (lora) be.lowRankInto(y, x, a, b, h, 2, false, w);
      else be.matmulInto(y, x, w, { transB: true });
    }
    return ((performance.now() - t0) / calls) * 1000;
  };
  time(false);
  time(true);
  const base: number[] = [], lora: number[] = [];
  for (let i = 0; i < reps; i++) {
    base.push(time(false));
    lora.push(time(true));
  }
  console.log(JSON.stringify({
    bench: 'ftune-lowrank-decode', K, N, r: R, sets, base_us: Math.round(median(base) * 10) / 10, lora_us: Math.round(median(lora) * 10) / 10,
    adapter_kib: Math.round(((R * K + N * R) * 4) / 1024), base_kib: Math.round((N * K * 2) / 1024),
  }));
}
