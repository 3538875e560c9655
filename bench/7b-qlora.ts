// QLoRA on a Llama-2-7B-shaped model on this machine: random N(0, 0.02) weights generated
// natively (src/backend/native/addon-rand.ts, counter-based Box-Muller: a JS loop over
// 6.7e9 values would take minutes) and quantized to NF4 with double quantization tensor
// by tensor, so at most one dense f32 matrix (11008 x 4096, 180 MB) exists at a time and
// the f32 model never does. Then 2 QLoRA steps exactly as `ftune bench --method qlora`
// runs them (bf16 4-bit compute, f32 matmuls elsewhere, gradient checkpointing, AdamW),
// and the peak RSS next to `ftune estimate`'s prediction. One JSON line on stdout.
//
// Run: node dist/bench/7b-qlora.js [--seq 256] [--batch 1] [--steps 2] [--r 8] [--targets q,v|all-linear]
// Results: bench/RESULTS-7b.md.
import { parseArgs } from 'node:util';
import { Ops } from '../src/autograd/ops.js';
import { Tape } from '../src/autograd/tape.js';
import { nativeBackend } from '../src/backend/index.js';
import type { FTensor } from '../src/backend/backend.js';
import { fillNormal } from '../src/backend/native/addon-rand.js';
import { benchTargets } from '../src/cli/commands/bench.js';
import { estimateMemory } from '../src/estimate/estimate.js';
import { namedConfig } from '../src/models/configs/named.js';
import { LlamaForCausalLM, type QuantSource, type WeightSource } from '../src/models/llama/model.js';
import { getPeftModel } from '../src/peft/index.js';
import { QLORA_PRESET } from '../src/quant/config.js';
import { persistQuant4 } from '../src/quant/types.js';
import { scope } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { Optimizer } from '../src/train/optim.js';
import { FlatParams } from '../src/train/params.js';
import { Rng } from '../src/util/rng.js';

const { values } = parseArgs({
  options: { seq: { type: 'string', default: '256' }, batch: { type: 'string', default: '1' }, steps: { type: 'string', default: '2' },
    r: { type: 'string', default: '8' }, targets: { type: 'string', default: 'q,v' }, seed: { type: 'string', default: '0' } },
});
const int = (s: string | undefined): number => Number.parseInt(s ?? '', 10);
const [seq, batch, steps, r, seed] = [int(values.seq), int(values.batch), int(values.steps), int(values.r), int(values.seed)];
const targets = benchTargets(values.targets ?? 'q,v');
const mib = (b: number): number => Math.round(b / 2 ** 20);
const peakRssMib = (): number => Math.round(process.resourceUsage().maxRSS / 1024);
const log = (s: string): void => void process.stderr.write(`${s}\n`);

const cfg = namedConfig('llama-2-7b');
const bnb = QLORA_PRESET;
let tensorSeed = seed * 1_000_003;

// Norms 1, everything else N(0, 0.02) in f32 (embeddings and lm_head stay dense, as in ftune bench).
const dense: WeightSource = (_name, shape, role) => {
  const n = shape.reduce((a, b) => a * b, 1);
  if (role === 'norm') return Tensor.from(shape, 'f32', new Float32Array(n).fill(1), 'weights');
  return fillNormal(Tensor.empty(shape, 'f32', 'weights'), tensorSeed++, 0.02);
};

const quant: QuantSource = {
  computeDtype: bnb.bnb4bitComputeDtype === 'bfloat16' ? 'bf16' : 'f32',
  weight: (_name, shape) => scope(() => {
    const w = fillNormal(Tensor.empty(shape, 'f32', 'workspace'), tensorSeed++, 0.02);
    const q = nativeBackend.quantize4bit(w, { quantType: bnb.bnb4bitQuantType, blocksize: bnb.blocksize, doubleQuant: bnb.bnb4bitUseDoubleQuant });
    w.release();
    return persistQuant4({ ...q, dtype: 'float32' });
  }),
};

const t0 = performance.now();
const base = new LlamaForCausalLM(cfg, dense, nativeBackend, quant);
const loadS = (performance.now() - t0) / 1000;
log(`built and quantized llama-2-7b in ${loadS.toFixed(1)} s, peak RSS ${peakRssMib()} MiB`);
const model = getPeftModel(base, { r, loraAlpha: 2 * r, targetModules: targets }, 'default', { seed });
const params = new FlatParams(model.trainableParameters());
const optimizer = new Optimizer(params, { name: 'adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
const rng = new Rng(seed + 1);
const stepMs: number[] = [];
const losses: number[] = [];
for (let step = 0; step < steps; step++) {
  const ids = Int32Array.from({ length: batch * seq }, () => rng.int(cfg.vocabSize));
  const s0 = performance.now();
  scope(() => {
    const tape = new Tape();
    for (const p of params.tensors) tape.watch(p);
    const ops = new Ops(nativeBackend, { tape, training: true, matmulDtype: 'f32' });
    const res = model.loss(ops, ids, ids, batch, { checkpoint: true });
    losses.push(res.sum / res.count);
    tape.backward(nativeBackend, res.loss, Tensor.from([1], 'f32', [1]), (leaf, g: FTensor) => params.accumulate(nativeBackend, leaf, g));
  });
  optimizer.update(nativeBackend, 1e-3, 1);
  params.zeroGrad();
  stepMs.push(performance.now() - s0);
  log(`step ${step + 1}/${steps}: loss ${losses.at(-1)?.toFixed(4)} in ${((stepMs.at(-1) ?? 0) / 1000).toFixed(1)} s, peak RSS ${peakRssMib()} MiB`);
}

const est = estimateMemory(cfg, { method: 'qlora', batch, seq, r, targetModules: targets, gradientCheckpointing: true, bf16: false });
const measured = peakRssMib();
log(`peak RSS ${measured} MiB (${(measured / 1024).toFixed(2)} GiB), ftune estimate ${mib(est.bytes.total)} MiB (${est.gib.total} GiB)`);
process.stdout.write(`${JSON.stringify({
  model: 'llama-2-7b (random weights)', method: 'qlora', quant: 'nf4 + double quant, blocksize 64, bf16 compute', r, targets: values.targets,
  batch, seq, steps, gradient_checkpointing: true, trainable_params: params.count, quantized_params: est.params.quantized,
  load_s: Math.round(loadS * 10) / 10, step_s: stepMs.map((m) => Math.round(m / 100) / 10), losses,
  peak_rss_mib: measured, estimate_mib: mib(est.bytes.total), estimate_error_pct: Math.round((mib(est.bytes.total) / measured - 1) * 1000) / 10,
  estimate_mib_by_part: Object.fromEntries(Object.entries(est.bytes).map(([k, v]) => [k, mib(v)])),
})}\n`);
