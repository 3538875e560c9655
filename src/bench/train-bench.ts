// Training-step benchmark on a bench preset with random (seeded) weights and tokens:
// median forward, backward and optimizer times, tokens/s, peak RSS and the allocator's
// accounting, measured the way torch_anchor.py measures PyTorch.
import { Ops } from '../autograd/ops.js';
import type { Tape } from '../autograd/tape.js';
import { nativeBackend } from '../backend/index.js';
import type { FTensor } from '../backend/backend.js';
import { LlamaForCausalLM } from '../models/llama/model.js';
import { Linear4bit } from '../nn/linear4bit.js';
import { getPeftModel } from '../peft/index.js';
import type { BitsAndBytesConfig } from '../quant/config.js';
import { memoryStats, resetPeak, type MemoryCategory } from '../tensor/memory.js';
import { scope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { Optimizer } from '../train/optim.js';
import { FlatParams } from '../train/params.js';
import type { TrainableModel } from '../train/trainer.js';
import { Rng } from '../util/rng.js';
import { flopsPerToken, presetConfig, type Preset } from './presets.js';
import { randomQuant, randomSource } from './random-weights.js';

export interface TrainBenchOptions {
  preset: Preset;
  presetName: string;
  method: 'full' | 'lora' | 'qlora';
  r: number;
  targetModules: string[] | 'all-linear';
  batch: number;
  steps: number;
  warmup: number;
  bf16: boolean;
  gradientCheckpointing: boolean;
  seed: number;
  /** 4-bit settings for qlora. */
  bnb: BitsAndBytesConfig;
  /** Called after each step (warm-up ones included), e.g. to start a profile once warm. */
  onStepEnd?: (step: number) => void;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] ?? 0 : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};

export function runTrainBench(o: TrainBenchOptions): Record<string, unknown> {
  const rss0 = process.memoryUsage().rss;
  const cfg = presetConfig(o.preset);
  const base = new LlamaForCausalLM(cfg, randomSource(o.seed, o.method === 'lora' && o.bf16 ? 'bf16' : 'f32'), nativeBackend,
    o.method === 'qlora' ? randomQuant(o.seed, o.bnb) : undefined);
  const model: TrainableModel = o.method === 'full' ? base : getPeftModel(base, { r: o.r, loraAlpha: 2 * o.r, targetModules: o.targetModules }, 'default', { seed: o.seed });
  const params = new FlatParams(model.trainableParameters());
  const optimizer = new Optimizer(params, { name: 'adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  const lr = o.method === 'full' ? 3e-4 : 1e-3;
  const rng = new Rng(o.seed + 1);
  const t = o.preset.seq;
  const batches = Array.from({ length: 4 }, () => Int32Array.from({ length: o.batch * t }, () => rng.int(o.preset.vocab)));
  const ops = (tape: Tape): Ops => new Ops(nativeBackend, { tape, training: true, matmulDtype: o.bf16 ? 'bf16' : 'f32', recompute: o.method === 'full' });
  const fwd: number[] = [], bwd: number[] = [], opt: number[] = [], total: number[] = [], losses: number[] = [];
  resetPeak();
  for (let step = 0; step < o.warmup + o.steps; step++) {
    const ids = batches[step % batches.length] ?? new Int32Array();
    const t0 = performance.now();
    let t1 = t0;
    scope(() => {
      const tape = params.tape();
      const r = model.loss(ops(tape), ids, ids, o.batch, { checkpoint: o.gradientCheckpointing, gradScale: 1 });
      losses.push(r.sum / r.count);
      t1 = performance.now();
      tape.backward(nativeBackend, r.loss, Tensor.from([1], 'f32', [1]), (leaf, g: FTensor) => params.accumulate(nativeBackend, leaf, g));
    });
    const t2 = performance.now();
    optimizer.update(nativeBackend, lr, 1);
    params.zeroGrad();
    const t3 = performance.now();
    if (step >= o.warmup) {
      fwd.push(t1 - t0);
      bwd.push(t2 - t1);
      opt.push(t3 - t2);
      total.push(t3 - t0);
    }
    o.onStepEnd?.(step);
  }
  const med = median(total) / 1000;
  const quantLayers = base.namedModules().flatMap(([, m]) => (m instanceof Linear4bit ? [m] : []));
  const quantBytes = quantLayers.reduce((n, l) => n + l.weightBytes, 0);
  const quantF32Bytes = quantLayers.reduce((n, l) => n + 4 * l.weightCount, 0);
  const loraParams = o.method === 'full' ? 0 : params.count;
  const fpt = flopsPerToken(o.preset, o.method, loraParams);
  const tps = (o.batch * t) / med;
  const mem = memoryStats();
  const mib = (b: number): number => Math.round((b / 2 ** 20) * 10) / 10;
  const peak: Partial<Record<MemoryCategory, number>> = {};
  for (const [k, v] of Object.entries(mem.peak)) peak[k as MemoryCategory] = mib(v);
  return {
    bench: 'ftune', preset: o.presetName, method: o.method, bf16: o.bf16, gradient_checkpointing: o.gradientCheckpointing,
    targets: o.method === 'full' ? null : o.targetModules === 'all-linear' ? 'all-linear' : o.targetModules.join(','), r: o.method === 'full' ? null : o.r,
    batch: o.batch, seq: t, steps: o.steps, tokens_per_s: Math.round(tps * 10) / 10,
    fwd_ms: Math.round(median(fwd)), bwd_ms: Math.round(median(bwd)), opt_ms: Math.round(median(opt) * 10) / 10, step_ms: Math.round(med * 1000),
    peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024), start_rss_mib: Math.round(rss0 / 2 ** 20),
    accounted_peak_mib: peak, accounted_total_peak_mib: mib(mem.totalPeak),
    ...(quantLayers.length > 0 ? { quant_weight_mib: mib(quantBytes), quant_weight_ratio_to_f32: Math.round((quantBytes / quantF32Bytes) * 1e4) / 1e4 } : {}),
    trainable_params: params.count, flops_per_token: fpt, achieved_gflops: Math.round((fpt * tps) / 1e9 * 10) / 10,
    first_loss: losses[0], last_loss: losses.at(-1),
  };
}
