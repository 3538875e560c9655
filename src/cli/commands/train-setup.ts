// Shared by train, eval and compare: reading the data flags into tokenized datasets,
// and loading a base model with an optional adapter.
import { DATA_FORMATS, loadDataset, packExamples, splitValidation, type DataFormat, type Example } from '../../data/index.js';
import { ConfigError } from '../../errors.js';
import type { Tokenizer } from '../../tokenizer/tokenizer.js';
import { AutoModelForCausalLM } from '../../models/auto.js';
import type { WeightDType } from '../../models/load.js';
import type { LlamaForCausalLM } from '../../models/llama/model.js';
import { PeftModel } from '../../peft/index.js';
import { numberFlag, required, type Flag, type FlagValues, type Flags } from '../command.js';

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
