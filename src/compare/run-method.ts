// One method of a comparison, run start to finish in the current process: train on the
// shared data with the shared TrainingArguments, save the model or adapter, then measure
// eval loss/perplexity, exact match, size on disk and generation speed (unmerged, then
// merged for adapters). `ftune compare` runs each method in its own child process so
// that the peak RSS it reports belongs to that method alone.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Example } from '../data/index.js';
import { padIdOf } from '../data/index.js';
import { generate, type Decoder } from '../generate/generate.js';
import type { LlamaForCausalLM } from '../models/llama/model.js';
import type { PeftModel } from '../peft/index.js';
import { dequantizeModel } from '../quant/dequantize-model.js';
import { memoryStats } from '../tensor/memory.js';
import { TOKENIZER_FILES } from '../tokenizer/files.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { TrainingArguments } from '../train/args.js';
import type { TrainerCallback } from '../train/callbacks.js';
import { evaluateLoss } from '../train/evaluate.js';
import { Trainer, type TrainableModel } from '../train/trainer.js';
import { exactMatch, referenceRows, type ExactMatchResult } from './exact-match.js';
import type { MethodResult } from './types.js';

export interface MethodRun {
  method: 'full' | 'lora' | 'qlora';
  base: LlamaForCausalLM;
  /** The LoRA model over `base` (lora, qlora); undefined for full fine-tuning. */
  peft: PeftModel | undefined;
  tokenizer: Tokenizer;
  train: Example[];
  eval: Example[] | undefined;
  args: Partial<TrainingArguments> & { outputDir: string };
  /** Where the model or adapter is saved (its size on disk is measured there). */
  saveDir: string;
  /** Exact-match rows scored at most. */
  exactMatchRows: number;
  /** Tokens generated for the generation-speed measurement. */
  genTokens: number;
  /** Extra callbacks (the CLI's progress bar). */
  callbacks?: TrainerCallback[];
  /** Told what phase starts (for logs). */
  onPhase?: (phase: string) => void;
}

/** Bytes of the files `savePretrained` wrote in dir (tokenizer files and checkpoints excluded). */
export function savedBytes(dir: string): number {
  const skip = new Set<string>(TOKENIZER_FILES);
  let bytes = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    if (st.isFile() && !skip.has(name)) bytes += st.size;
  }
  return bytes;
}

/** Greedy tokens/s over exactly n new tokens (EOS does not stop it) after `prompt`. */
export function generationSpeed(model: Decoder, prompt: readonly number[], n: number): number {
  generate(model, prompt, { maxNewTokens: 2, temperature: 0, eosTokenId: [] }); // warm-up (allocations, caches)
  const t0 = performance.now();
  const out = generate(model, prompt, { maxNewTokens: n, temperature: 0, eosTokenId: [] });
  return (out.length - prompt.length) / ((performance.now() - t0) / 1000);
}

/**
 * Peak resident set of this process in MiB. On Linux, /proc/self/status VmHWM: the high-water
 * mark of this process image alone. getrusage's maxRSS is not used there because it
 * survives exec, so a child spawned by a big parent would report the parent's peak.
 */
export function peakRssMiB(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m?.[1] !== undefined) return Number(m[1]) / 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS / 1024;
}

const countOf = (params: Array<[string, { size: number }]>): number => params.reduce((s, [, t]) => s + t.size, 0);

export function runMethod(r: MethodRun): MethodResult {
  const phase = r.onPhase ?? ((): void => undefined);
  const model: TrainableModel = r.peft ?? r.base;
  const decoder: Decoder = r.peft ?? r.base;
  const padId = padIdOf(r.tokenizer);
  const evalBatch = r.args.perDeviceEvalBatchSize ?? 8;
  const bf16 = r.args.bf16 === true;
  const evalBefore = r.eval === undefined ? undefined : evaluateLoss(model, r.eval, { batchSize: evalBatch, padId, bf16 }).loss;

  const curve: Array<{ step: number; loss: number }> = [];
  const evalCurve: Array<{ step: number; loss: number }> = evalBefore === undefined ? [] : [{ step: 0, loss: evalBefore }];
  const recorder: TrainerCallback = {
    onLog(_state, logs) {
      const step = logs['step'] ?? 0;
      if (logs['loss'] !== undefined) curve.push({ step, loss: logs['loss'] });
      if (logs['eval_loss'] !== undefined && evalCurve.at(-1)?.step !== step) evalCurve.push({ step, loss: logs['eval_loss'] });
    },
  };
  phase('train');
  const trainer = new Trainer({
    model, args: r.args, trainDataset: r.train, ...(r.eval !== undefined ? { evalDataset: r.eval } : {}),
    tokenizer: r.tokenizer, callbacks: [recorder, ...(r.callbacks ?? [])],
  });
  const out = trainer.train();
  const peakRss = peakRssMiB();
  const accountedPeakMiB = memoryStats().totalPeak / 2 ** 20;
  trainer.saveModel(r.saveDir);

  phase('evaluate');
  let evalLoss: number | undefined;
  if (r.eval !== undefined) {
    evalLoss = evaluateLoss(model, r.eval, { batchSize: evalBatch, padId, bf16 }).loss;
    if (evalCurve.at(-1)?.step !== out.globalStep) evalCurve.push({ step: out.globalStep, loss: evalLoss });
  }
  const eos = r.base.config.eosTokenIds;
  const refs = r.eval === undefined ? [] : referenceRows(r.eval, eos);
  const em: ExactMatchResult | undefined = refs.length === 0 ? undefined : exactMatch(decoder, r.tokenizer, refs, { maxRows: r.exactMatchRows });

  const counts = r.peft?.countParameters() ?? { all: countOf(r.base.namedParameters()), trainable: countOf(r.base.trainableParameters()) };
  phase('generation speed');
  const prompt = refs[0]?.promptIds ?? (r.tokenizer.bosTokenId !== undefined ? [r.tokenizer.bosTokenId] : [0]);
  const genUnmerged = generationSpeed(decoder, prompt, r.genTokens);
  let genMerged: number | undefined;
  if (r.peft !== undefined) {
    // As `ftune merge` does: a 4-bit base is dequantized to f32 before the adapter is folded in.
    if (r.base.quantizationConfig !== undefined) {
      dequantizeModel(r.base, r.base.backend, 'f32');
      r.base.quantizationConfig = undefined;
    }
    genMerged = generationSpeed(r.peft.mergeAndUnload(), prompt, r.genTokens);
  }
  return {
    method: r.method,
    trainableParams: counts.trainable,
    totalParams: counts.all,
    peakRssMiB: peakRss,
    accountedPeakMiB,
    tokensPerSecond: out.metrics['train_tokens_per_second'] ?? 0,
    wallSeconds: out.metrics['train_runtime'] ?? 0,
    steps: out.globalStep,
    trainLoss: out.trainingLoss,
    finalTrainLoss: curve.at(-1)?.loss ?? out.trainingLoss,
    evalLossBefore: evalBefore ?? null,
    evalLoss: evalLoss ?? null,
    evalPerplexity: evalLoss === undefined ? null : Math.exp(evalLoss),
    exactMatch: em === undefined ? null : { accuracy: em.accuracy, correct: em.correct, rows: em.rows },
    samples: em?.samples ?? [],
    sizeOnDiskBytes: savedBytes(r.saveDir),
    genTokensPerSecondUnmerged: genUnmerged,
    genTokensPerSecondMerged: genMerged ?? null,
    lossCurve: curve,
    evalCurve,
    outputDir: r.saveDir,
  };
}
