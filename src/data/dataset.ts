// Dataset loading: rows -> Samples -> token ids and labels (HF convention: labels equal
// input ids, IGNORE_INDEX where there is no loss, NOT shifted; the model's loss compares
// logits[t] with labels[t+1]), truncated to maxLength keeping the start.
import { ConfigError, FormatError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { DATA_FORMATS, detectFormat, toSample, type DataFormat, type Sample } from './formats.js';
import { readRows, type LocatedRow } from './read.js';
import {
  alpacaRenderer, encodeConversation, jinjaRenderer, transcriptRenderer, type Encoded, type Renderer,
} from './template.js';

/** One training sequence: same length arrays; labels[t] = inputIds[t] or IGNORE_INDEX (-100). */
export interface Example {
  inputIds: number[];
  labels: number[];
}

export interface DataOptions {
  /** Row format; detected from the first row's fields when absent. */
  format?: DataFormat;
  /** Longest sequence in tokens; longer examples keep their first maxLength tokens. Default 1024. */
  maxLength?: number;
  /** Put loss on prompt tokens too (every token of the example); default false. */
  trainOnPrompt?: boolean;
}

export const DATA_DEFAULTS = { maxLength: 1024, trainOnPrompt: false } as const;

/** Padding id for batches: the tokenizer's pad token, else EOS, else 0. */
export function padIdOf(tokenizer: Tokenizer): number {
  return tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0;
}

/** text rows: the whole text (with the post-processor's BOS) plus EOS, loss on all of it. */
function encodeText(text: string, tokenizer: Tokenizer): Encoded {
  const inputIds = tokenizer.encode(text, { addSpecialTokens: true });
  if (tokenizer.eosTokenId !== undefined) inputIds.push(tokenizer.eosTokenId);
  return { inputIds, labels: inputIds.slice() };
}

function rendererFor(sample: Extract<Sample, { kind: 'chat' }>, tokenizer: Tokenizer): Renderer {
  if (tokenizer.chatTemplate !== undefined) return jinjaRenderer(tokenizer, sample.tools);
  const eos = tokenizer.eosToken ?? '';
  return sample.instructions !== undefined ? alpacaRenderer(sample.instructions, eos) : transcriptRenderer(eos, sample.tools);
}

function checkMaxLength(maxLength: number): void {
  if (!Number.isInteger(maxLength) || maxLength < 2) {
    throw new ConfigError(`max length ${maxLength} is not an integer >= 2`, 'pass --max-length as a whole number of tokens, e.g. 1024');
  }
}

/**
 * Tokenize rows read by readRows: detect or use the format, validate each row (errors
 * name path:line and the field), template, mask and truncate.
 */
export function tokenizeRows(rows: readonly LocatedRow[], tokenizer: Tokenizer,
  opts: DataOptions & { path: string }): Example[] {
  const maxLength = opts.maxLength ?? DATA_DEFAULTS.maxLength;
  const trainOnPrompt = opts.trainOnPrompt ?? DATA_DEFAULTS.trainOnPrompt;
  checkMaxLength(maxLength);
  if (rows.length === 0) throw new FormatError(`${opts.path}: empty dataset (no rows)`, 'add at least one example to the file');
  if (opts.format !== undefined && !DATA_FORMATS.includes(opts.format)) {
    throw new ConfigError(`unknown dataset format "${String(opts.format)}"`, `--format is one of ${DATA_FORMATS.join(', ')}`);
  }
  const format = opts.format ?? detectFormat(rows, opts.path);
  return rows.map(({ row, line }) => {
    const src = { path: opts.path, line };
    const sample = toSample(row, format, src);
    let enc: Encoded;
    if (sample.kind === 'text') {
      enc = encodeText(sample.text, tokenizer);
    } else {
      if (!trainOnPrompt && !sample.messages.some((m) => m.role === 'assistant')) {
        throw new FormatError(`${opts.path}:${line}: the conversation has no assistant turn, so nothing to train on`,
          'add the assistant reply, drop the row, or pass --train-on-prompt to train on the whole text');
      }
      enc = encodeConversation(sample.messages, tokenizer, rendererFor(sample, tokenizer), trainOnPrompt, src);
    }
    return { inputIds: enc.inputIds.slice(0, maxLength), labels: enc.labels.slice(0, maxLength) };
  });
}

/** readRows + tokenizeRows. */
export function loadDataset(path: string, tokenizer: Tokenizer, opts: DataOptions = {}): Example[] {
  return tokenizeRows(readRows(path), tokenizer, { ...opts, path });
}
