// Shared by train, eval and compare: the data, LoRA and training flags, reading the data
// flags into tokenized datasets, building the model a method trains and its
// TrainingArguments, and loading a base model with an optional adapter.
import { DATA_FORMATS, loadDataset, packExamples, splitValidation, type DataFormat, type Example } from '../../data/index.js';
import { ConfigError } from '../../errors.js';
import type { Tokenizer } from '../../tokenizer/tokenizer.js';
import { AutoModelForCausalLM } from '../../models/auto.js';
import type { WeightDType } from '../../models/load.js';
import type { LlamaForCausalLM } from '../../models/llama/model.js';
import { getPeftModel, LoraConfig, PeftModel } from '../../peft/index.js';
import { QLORA_PRESET } from '../../quant/config.js';
import type { TrainingArguments } from '../../train/args.js';
import { parseSchedulerType } from '../../train/schedule.js';
import { numberFlag, required, type Flag, type FlagValues, type Flags } from '../command.js';

export type Method = 'full' | 'lora' | 'qlora';
export const METHODS: readonly Method[] = ['full', 'lora', 'qlora'];

const int = (n: number): boolean => Number.isInteger(n) && n > 0;

export const FORMAT_FLAG: Flag = { type: 'string', arg: 'NAME', help: `data format: ${DATA_FORMATS.join(', ')} (default: detected from the fields)` };
export const MAX_LENGTH_FLAG: Flag = { type: 'string', arg: 'N', help: 'truncate examples to N tokens', default: '1024' };

export const DATA_FLAGS: Flags = {
  data: { type: 'string', arg: 'FILE', help: 'training data: JSON or JSONL (text, prompt/completion, alpaca, messages, sharegpt)' },
  'eval-data': { type: 'string', arg: 'FILE', help: 'evaluation data (same formats)' },
  'val-split': { type: 'string', arg: 'F', help: 'hold out this fraction of --data for evaluation (when no --eval-data)' },
  format: FORMAT_FLAG,
  'max-length': MAX_LENGTH_FLAG,
  'train-on-prompt': { type: 'boolean', help: 'compute the loss on prompts too (default: completions / assistant turns only)' },
  packing: { type: 'boolean', help: 'concatenate examples into rows of --max-length tokens' },
};

/** LoRA (and QLoRA) adapter flags. */
export const LORA_FLAGS: Flags = {
    r: { type: 'string', arg: 'N', help: 'LoRA rank', default: '8' },
    'lora-alpha': { type: 'string', arg: 'N', help: 'LoRA alpha (scaling = alpha / r)', default: '16' },
    'lora-dropout': { type: 'string', arg: 'F', help: 'dropout on the LoRA input', default: '0.05' },
    'target-modules': { type: 'string', arg: 'LIST', help: 'comma-separated module names, a regex, or all-linear', default: 'q_proj,v_proj' },
    'use-rslora': { type: 'boolean', help: 'scale LoRA by alpha / sqrt(r)' },
};

/** Batches, steps, optimizer, schedule, logging/eval cadence, seed and precision. */
export const TRAINING_FLAGS: Flags = {
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
    seed: { type: 'string', arg: 'N', help: 'seed for initialisation, shuffling and dropout', default: '42' },
    bf16: { type: 'boolean', help: 'bf16 inputs to the matmuls and attention products, f32 accumulation (LoRA: bf16 base weights; full: f32 master weights)' },
    'gradient-checkpointing': { type: 'boolean', help: 'recompute each decoder layer in backward to save memory (default on for qlora)' },
};

export interface Datasets {
  train: Example[];
  eval: Example[] | undefined;
}

export function dataFormat(values: FlagValues): DataFormat | undefined {
  const f = values['format'];
  if (typeof f !== 'string') return undefined;
  if (!DATA_FORMATS.includes(f as DataFormat)) throw new ConfigError(`--format ${f} is not a data format`, `use one of: ${DATA_FORMATS.join(', ')}`);
  return f as DataFormat;
}

export function readDatasets(cmd: string, values: FlagValues, tokenizer: Tokenizer, seed: number): Datasets {
  const maxLength = numberFlag(values, cmd, 'max-length', 'a positive integer', (n) => Number.isInteger(n) && n > 1) ?? 1024;
  const format = dataFormat(values);
  const opts = { maxLength, trainOnPrompt: values['train-on-prompt'] === true, ...(format !== undefined ? { format } : {}) };
  let train = loadDataset(required(values, cmd, 'data'), tokenizer, opts);
  let evalSet: Example[] | undefined;
  const evalPath = values['eval-data'];
  const split = numberFlag(values, cmd, 'val-split', 'a fraction in (0, 1)', (n) => n > 0 && n < 1);
  if (typeof evalPath === 'string') {
    if (split !== undefined) throw new ConfigError(`ftune ${cmd}: --eval-data and --val-split both given`, 'pass one of them');
    evalSet = loadDataset(evalPath, tokenizer, opts);
  } else if (split !== undefined) {
    const parts = splitValidation(train, split, seed);
    train = parts.train;
    evalSet = parts.eval;
  }
  if (values['packing'] === true) train = packExamples(train, maxLength, tokenizer.eosTokenId);
  return { train, eval: evalSet };
}

/** A base model, with the PEFT adapter in `adapterDir` applied (unmerged) when given. */
export function loadModel(modelDir: string, adapterDir: string | undefined, dtype: WeightDType): LlamaForCausalLM | PeftModel {
  const base = AutoModelForCausalLM.fromPretrained(modelDir, { dtype });
  return adapterDir === undefined ? base : PeftModel.fromPretrained(base, adapterDir);
}

export function parseMethod(value: unknown): Method {
  if (typeof value === 'string' && (METHODS as readonly string[]).includes(value)) return value as Method;
  throw new ConfigError(`--method ${String(value)} is not supported`, 'use --method full, lora or qlora');
}

/** The base model a method trains: f32 (bf16 weights for lora --bf16), 4-bit NF4 for qlora. */
export function loadBase(modelDir: string, method: Method, values: FlagValues): LlamaForCausalLM {
  return AutoModelForCausalLM.fromPretrained(modelDir, {
    dtype: method === 'lora' && values['bf16'] === true ? 'bf16' : 'f32',
    ...(method === 'qlora' ? { quantizationConfig: QLORA_PRESET } : {}),
  });
}

/** LoRA adapters from the LoRA flags, injected into `base`. */
export function loraModel(cmd: string, base: LlamaForCausalLM, values: FlagValues, seed: number): PeftModel {
  const targets = String(values['target-modules']);
  const config = LoraConfig({
    r: numberFlag(values, cmd, 'r', 'a positive integer', int) ?? 8,
    loraAlpha: numberFlag(values, cmd, 'lora-alpha', 'a positive number', (n) => n > 0) ?? 16,
    loraDropout: numberFlag(values, cmd, 'lora-dropout', 'a number in [0, 1)', (n) => n >= 0 && n < 1) ?? 0,
    targetModules: targets === 'all-linear' || /[\\^$*+?()[\]{}|]/.test(targets) ? targets : targets.split(',').map((s) => s.trim()).filter((s) => s !== ''),
    useRslora: values['use-rslora'] === true,
  });
  return getPeftModel(base, config, 'default', { seed });
}

/** TrainingArguments from the training flags (and train's checkpoint flags when present). */
export function trainingArgs(cmd: string, values: FlagValues, method: Method, output: string, seed: number, hasEval: boolean): Partial<TrainingArguments> & { outputDir: string } {
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
