// `ftune train`: full fine-tuning or LoRA on a JSON/JSONL dataset, with evaluation,
// checkpoints, resume and early stopping. Progress goes to stderr; one JSON object with
// the results goes to stdout. The final model (full) or adapter (LoRA) is written in
// --output itself, checkpoints in --output/checkpoint-N. Before loading anything it
// refuses an --output that already holds a model or checkpoints (unless resuming) and a
// run predicted not to fit in memory (unless --force).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../errors.js';
import { llamaConfigFromHf } from '../../models/llama/config.js';
import { AutoModelForCausalLM } from '../../models/auto.js';
import type { LlamaForCausalLM } from '../../models/llama/model.js';
import { getPeftModel, LoraConfig, type PeftModel } from '../../peft/index.js';
import { QLORA_PRESET } from '../../quant/config.js';
import { AutoTokenizer } from '../../tokenizer/tokenizer.js';
import { EarlyStoppingCallback, type TrainerCallback } from '../../train/callbacks.js';
import { checkMemory, checkOutputDir, predictPeakBytes } from '../../train/guards.js';
import { Trainer, type TrainableModel } from '../../train/trainer.js';
import type { TrainingArguments } from '../../train/args.js';
import { parseSchedulerType } from '../../train/schedule.js';
import { numberFlag, required, type Command, type FlagValues } from '../command.js';
import { ProgressBar } from '../progress.js';
import { hubModelDir } from './hub-model.js';
import { DATA_FLAGS, readDatasets } from './train-setup.js';

export type Method = 'full' | 'lora' | 'qlora';

const int = (n: number): boolean => Number.isInteger(n) && n > 0;

export const trainCommand: Command = {
  name: 'train',
  summary: 'fine-tune a model (full or LoRA) on a dataset',
  usage: 'ftune train --model DIR --data FILE --method full|lora --output DIR [flags]',
  flags: {
    model: { type: 'string', arg: 'DIR|REPO', help: 'base model directory (HF layout) or Hub repo id org/name[@rev]' },
    ...DATA_FLAGS,
    method: { type: 'string', arg: 'full|lora|qlora', help: 'what to train (qlora: LoRA over a 4-bit NF4 base, double quant, bf16 compute)', default: 'lora' },
    r: { type: 'string', arg: 'N', help: 'LoRA rank', default: '8' },
    'lora-alpha': { type: 'string', arg: 'N', help: 'LoRA alpha (scaling = alpha / r)', default: '16' },
    'lora-dropout': { type: 'string', arg: 'F', help: 'dropout on the LoRA input', default: '0.05' },
    'target-modules': { type: 'string', arg: 'LIST', help: 'comma-separated module names, a regex, or all-linear', default: 'q_proj,v_proj' },
    'use-rslora': { type: 'boolean', help: 'scale LoRA by alpha / sqrt(r)' },
    epochs: { type: 'string', arg: 'N', help: 'training epochs', default: '1' },
    'max-steps': { type: 'string', arg: 'N', help: 'optimizer steps (overrides --epochs)' },
    'batch-size': { type: 'string', arg: 'N', help: 'examples per micro-batch', default: '4' },
    'eval-batch-size': { type: 'string', arg: 'N', help: 'examples per evaluation batch', default: '8' },
    'grad-accum': { type: 'string', arg: 'N', help: 'micro-batches per optimizer step', default: '1' },
    lr: { type: 'string', arg: 'F', help: 'peak learning rate (default: 2e-4 for lora, 5e-5 for full)' },
    'weight-decay': { type: 'string', arg: 'F', help: 'AdamW weight decay', default: '0' },
    optim: { type: 'string', arg: 'adamw|sgd', help: 'optimizer', default: 'adamw' },
    scheduler: { type: 'string', arg: 'NAME', help: 'linear, cosine, constant, constant_with_warmup, cosine_with_min_lr', default: 'linear' },
    'warmup-steps': { type: 'string', arg: 'N', help: 'linear warmup steps', default: '0' },
    'warmup-ratio': { type: 'string', arg: 'F', help: 'warmup as a fraction of all steps (when --warmup-steps is 0)', default: '0' },
    'max-grad-norm': { type: 'string', arg: 'F', help: 'clip the global gradient norm (0 = off)', default: '1' },
    'logging-steps': { type: 'string', arg: 'N', help: 'log the loss every N steps', default: '10' },
    'eval-steps': { type: 'string', arg: 'N', help: 'evaluate every N steps (default: once per epoch)' },
    'save-steps': { type: 'string', arg: 'N', help: 'checkpoint every N steps (default: with each evaluation, else once per epoch)' },
    'save-total-limit': { type: 'string', arg: 'N', help: 'keep at most N checkpoints (the best is kept)' },
    'early-stopping-patience': { type: 'string', arg: 'N', help: 'stop after N evaluations without improvement; loads the best checkpoint at the end' },
    seed: { type: 'string', arg: 'N', help: 'seed for initialisation, shuffling and dropout', default: '42' },
    bf16: { type: 'boolean', help: 'bf16 matmul inputs with f32 accumulation (LoRA: bf16 base weights; full: f32 master weights)' },
    'gradient-checkpointing': { type: 'boolean', help: 'recompute each decoder layer in backward to save memory (default on for qlora)' },
    output: { type: 'string', arg: 'DIR', help: 'where the final model or adapter and the checkpoints go' },
    'resume-from-checkpoint': { type: 'string', arg: 'DIR|latest', help: 'continue a run from a checkpoint' },
    config: { type: 'string', arg: 'FILE', help: 'YAML or JSON file of flag values (flags given here win)' },
    force: { type: 'boolean', help: 'start even when the predicted peak memory exceeds the memory available' },
  },
  async run(values, io) {
    const cmd = 'train';
    const method = values['method'];
    if (method !== 'full' && method !== 'lora' && method !== 'qlora') throw new ConfigError(`--method ${String(method)} is not supported`, 'use --method full, lora or qlora');
    const modelDir = await hubModelDir(required(values, cmd, 'model'), 'model', io);
    const output = required(values, cmd, 'output');
    const seed = numberFlag(values, cmd, 'seed', 'an integer', Number.isInteger) ?? 42;
    checkOutputDir(output, { resuming: typeof values['resume-from-checkpoint'] === 'string' });
    memoryGuard(modelDir, method, values, io.stderr);

    const tokenizer = AutoTokenizer.fromPretrainedSync(modelDir);
    const data = readDatasets(cmd, values, tokenizer, seed);
    if (method === 'qlora') io.stderr('qlora: 4-bit NF4 base with double quantization and bf16 compute (the QLoRA paper\'s choice)\n');
    const base = AutoModelForCausalLM.fromPretrained(modelDir, {
      dtype: method === 'lora' && values['bf16'] === true ? 'bf16' : 'f32',
      ...(method === 'qlora' ? { quantizationConfig: QLORA_PRESET } : {}),
    });
    const peft = method === 'full' ? undefined : loraModel(base, values, seed, io.stderr);
    const model: TrainableModel = peft ?? base;
    const args = trainingArgs(values, method, output, seed, data.eval !== undefined);
    const callbacks: TrainerCallback[] = [new ProgressBar(io.stderr, process.stderr.isTTY === true)];
    const patience = numberFlag(values, cmd, 'early-stopping-patience', 'a positive integer', int);
    if (patience !== undefined) callbacks.push(new EarlyStoppingCallback({ patience }));
    io.stderr(`training ${method} on ${data.train.length} examples${data.eval !== undefined ? `, evaluating on ${data.eval.length}` : ''}\n`);

    const trainer = new Trainer({ model, args, trainDataset: data.train, ...(data.eval !== undefined ? { evalDataset: data.eval } : {}), tokenizer, callbacks });
    const result = trainer.train();
    trainer.saveModel(output);
    const evalLoss = data.eval !== undefined ? trainer.evaluate()['eval_loss'] : undefined;
    const counts = peft?.countParameters() ?? { all: base.namedParameters().reduce((n, [, t]) => n + t.size, 0), trainable: 0 };
    const trainable = model.trainableParameters().reduce((n, [, t]) => n + t.size, 0);
    io.stdout(`${JSON.stringify({
      method, train_loss: result.trainingLoss, eval_loss: evalLoss ?? null, steps: result.globalStep,
      tokens_per_s: result.metrics['train_tokens_per_second'], peak_rss_mib: process.resourceUsage().maxRSS / 1024,
      trainable_params: trainable, total_params: counts.all, output_dir: output,
    })}\n`);
  },
};

/** Refuses (ConfigError with suggestions) when the predicted peak exceeds the memory available, unless --force. */
function memoryGuard(modelDir: string, method: Method, values: FlagValues, log: (t: string) => void): void {
  const cmd = 'train';
  const configPath = join(modelDir, 'config.json');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch {
    return; // a missing or unreadable config.json is reported by the model loader, with its hint
  }
  const predicted = predictPeakBytes({
    config: llamaConfigFromHf(json, configPath),
    method,
    batchSize: numberFlag(values, cmd, 'batch-size', 'a positive integer', int) ?? 4,
    seqLen: numberFlag(values, cmd, 'max-length', 'a positive integer', int) ?? 1024,
    loraRank: numberFlag(values, cmd, 'r', 'a positive integer', int) ?? 8,
    bf16Base: method === 'lora' && values['bf16'] === true,
    gradientCheckpointing: values['gradient-checkpointing'] === true || (method === 'qlora' && values['gradient-checkpointing'] === undefined),
  });
  const check = checkMemory(predicted, { force: values['force'] === true });
  const gib = (b: number): string => (b / 2 ** 30).toFixed(2);
  if (!check.fits) log(`warning: --force: predicted peak ${gib(check.predicted)} GiB exceeds the ${gib(check.available)} GiB available (${check.source})\n`);
}

function loraModel(base: LlamaForCausalLM, values: FlagValues, seed: number, log: (t: string) => void): PeftModel {
  const cmd = 'train';
  const targets = String(values['target-modules']);
  const config = LoraConfig({
    r: numberFlag(values, cmd, 'r', 'a positive integer', int) ?? 8,
    loraAlpha: numberFlag(values, cmd, 'lora-alpha', 'a positive number', (n) => n > 0) ?? 16,
    loraDropout: numberFlag(values, cmd, 'lora-dropout', 'a number in [0, 1)', (n) => n >= 0 && n < 1) ?? 0,
    targetModules: targets === 'all-linear' || /[\\^$*+?()[\]{}|]/.test(targets) ? targets : targets.split(',').map((s) => s.trim()).filter((s) => s !== ''),
    useRslora: values['use-rslora'] === true,
  });
  const peft = getPeftModel(base, config, 'default', { seed });
  log(`${peft.printTrainableParameters()}\n`);
  return peft;
}

function trainingArgs(values: FlagValues, method: Method, output: string, seed: number, hasEval: boolean): Partial<TrainingArguments> & { outputDir: string } {
  const cmd = 'train';
  const n = (name: string, allowed: string, ok: (v: number) => boolean): number | undefined => numberFlag(values, cmd, name, allowed, ok);
  const evalSteps = n('eval-steps', 'a positive integer', int);
  const saveSteps = n('save-steps', 'a positive integer', int);
  const patience = values['early-stopping-patience'] !== undefined;
  const evalStrategy = !hasEval ? 'no' : evalSteps !== undefined ? 'steps' : 'epoch';
  const saveStrategy = saveSteps !== undefined ? 'steps' : evalStrategy === 'no' ? 'epoch' : evalStrategy;
  if (patience && !hasEval) throw new ConfigError('--early-stopping-patience needs an evaluation set', 'pass --eval-data or --val-split');
  return {
    outputDir: output,
    perDeviceTrainBatchSize: n('batch-size', 'a positive integer', int) ?? 4,
    perDeviceEvalBatchSize: n('eval-batch-size', 'a positive integer', int) ?? 8,
    gradientAccumulationSteps: n('grad-accum', 'a positive integer', int) ?? 1,
    numTrainEpochs: n('epochs', 'a positive number', (v) => v > 0) ?? 1,
    maxSteps: n('max-steps', 'a positive integer', int) ?? -1,
    learningRate: n('lr', 'a positive number', (v) => v > 0) ?? (method === 'full' ? 5e-5 : 2e-4),
    weightDecay: n('weight-decay', 'a number >= 0', (v) => v >= 0) ?? 0,
    optim: values['optim'] === 'sgd' ? 'sgd' : 'adamw',
    lrSchedulerType: parseSchedulerType(String(values['scheduler']), '--scheduler'),
    warmupSteps: n('warmup-steps', 'a non-negative integer', (v) => Number.isInteger(v) && v >= 0) ?? 0,
    warmupRatio: n('warmup-ratio', 'a fraction in [0, 1)', (v) => v >= 0 && v < 1) ?? 0,
    maxGradNorm: n('max-grad-norm', 'a number >= 0', (v) => v >= 0) ?? 1,
    loggingSteps: n('logging-steps', 'a positive integer', int) ?? 10,
    evalStrategy,
    ...(evalSteps !== undefined ? { evalSteps } : {}),
    saveStrategy,
    saveSteps: saveSteps ?? evalSteps ?? 500,
    ...(values['save-total-limit'] !== undefined ? { saveTotalLimit: n('save-total-limit', 'a positive integer', int) } : {}),
    loadBestModelAtEnd: patience,
    metricForBestModel: 'eval_loss',
    seed,
    bf16: values['bf16'] === true,
    gradientCheckpointing: values['gradient-checkpointing'] === true || (method === 'qlora' && values['gradient-checkpointing'] === undefined),
    ...(typeof values['resume-from-checkpoint'] === 'string' ? { resumeFromCheckpoint: values['resume-from-checkpoint'] } : {}),
  };
}
