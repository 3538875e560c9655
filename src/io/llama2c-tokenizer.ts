// llama2.c vocabulary files (tok512.bin, tokenizer.bin): reader, run.c's encoder as the
// reference, and conversion to a Hugging Face tokenizer.json in the Llama-2
// SentencePiece-BPE scheme (the same as hf_models/stories260K-hf/tokenizer.json).
//
// File layout (llama2.c tokenizer.py export / run.c build_tokenizer): uint32
// max_token_length, then per id: float32 score, int32 byte length, raw UTF-8 bytes. The
// count is not stored (run.c takes it from the checkpoint), so the reader reads to EOF.
import { readFileSync } from 'node:fs';
import { FormatError, IoError } from '../errors.js';

export interface Llama2cPiece {
  /** The piece as text, as llama2.c stores it (spaces, "\n<s>\n" for BOS, "<0x0A>" for bytes). */
  piece: string;
  bytes: Uint8Array;
  score: number;
}

export interface Llama2cTokenizer {
  maxTokenLength: number;
  pieces: Llama2cPiece[];
}

const HINT = 'pass a tokenizer exported by llama2.c (tokenizer.py --export or the shipped tokenizer.bin / tok*.bin)';

/**
 * Read a llama2.c tokenizer file. `vocabSize`, when given (from the checkpoint header),
 * must equal the number of entries.
 */
export function readLlama2cTokenizer(path: string, vocabSize?: number): Llama2cTokenizer {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new IoError(`cannot read ${path}: ${(e as Error).message}`, 'check the tokenizer path');
  }
  if (buf.length < 4) throw new FormatError(`${path}: ${buf.length} bytes, too short for the max_token_length header`, HINT);
  const maxTokenLength = buf.readUInt32LE(0);
  if (maxTokenLength === 0 || maxTokenLength > 1024) {
    throw new FormatError(`${path}: max_token_length ${maxTokenLength} is not in 1..1024`, HINT);
  }
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const pieces: Llama2cPiece[] = [];
  let off = 4;
  while (off < buf.length) {
    const id = pieces.length;
    if (off + 8 > buf.length) throw new FormatError(`${path}: entry ${id} is cut off at byte ${off} (file truncated)`, HINT);
    const score = buf.readFloatLE(off);
    const len = buf.readInt32LE(off + 4);
    off += 8;
    if (len < 0 || len > maxTokenLength * 4 || off + len > buf.length) {
      throw new FormatError(`${path}: entry ${id} has byte length ${len} (max_token_length ${maxTokenLength}, ${buf.length - off} bytes left)`, HINT);
    }
    const bytes = new Uint8Array(buf.subarray(off, off + len));
    off += len;
    let piece: string;
    try {
      piece = decoder.decode(bytes);
    } catch {
      throw new FormatError(`${path}: entry ${id} is not valid UTF-8`, HINT);
    }
    pieces.push({ piece, bytes, score });
  }
  if (vocabSize !== undefined && pieces.length !== vocabSize) {
    throw new FormatError(`${path}: ${pieces.length} entries but the checkpoint's vocab_size is ${vocabSize}`,
      'use the tokenizer the checkpoint was trained with (tok512.bin for stories260K, tokenizer.bin for 32000-token models)');
  }
  if (pieces.length < 259) {
    throw new FormatError(`${path}: ${pieces.length} entries; a llama2.c vocabulary holds <unk>, <s>, </s> and 256 byte pieces first`, HINT);
  }
  return { maxTokenLength, pieces };
}

function lookupTable(tok: Llama2cTokenizer): Map<string, number> {
  const map = new Map<string, number>();
  tok.pieces.forEach((p, id) => {
    if (!map.has(p.piece)) map.set(p.piece, id);
  });
  return map;
}

/** run.c's encode(): dummy-prefix space, code points (bytes+3 fallback), greedy best-score merges. */
export function llama2cEncode(tok: Llama2cTokenizer, text: string, opts: { bos?: boolean; eos?: boolean } = {}): number[] {
  const lookup = lookupTable(tok);
  const out: number[] = [];
  if (opts.bos ?? true) out.push(1);
  const ids: number[] = [];
  if (text.length > 0) {
    const dummy = lookup.get(' ');
    if (dummy !== undefined) ids.push(dummy);
  }
  const utf8 = new TextEncoder();
  for (const ch of text) {
    const id = lookup.get(ch);
    if (id !== undefined) ids.push(id);
    else for (const b of utf8.encode(ch)) ids.push(b + 3);
  }
  for (;;) {
    let bestScore = -1e10;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i + 1 < ids.length; i++) {
      const merged = lookup.get(pieceAt(tok, ids[i]) + pieceAt(tok, ids[i + 1]));
      if (merged !== undefined && scoreAt(tok, merged) > bestScore) {
        bestScore = scoreAt(tok, merged);
        bestId = merged;
        bestIdx = i;
      }
    }
    if (bestIdx < 0) break;
    ids.splice(bestIdx, 2, bestId);
  }
  out.push(...ids);
  if (opts.eos ?? false) out.push(2);
  return out;
}

function pieceAt(tok: Llama2cTokenizer, id: number | undefined): string {
  return tok.pieces[id ?? -1]?.piece ?? '';
}
function scoreAt(tok: Llama2cTokenizer, id: number): number {
  return tok.pieces[id]?.score ?? -Infinity;
}

const SPACE = '\u2581';
const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;
/** llama2.c's names for the control pieces -> SentencePiece's. */
const CONTROL: Record<number, string> = { 0: '<unk>', 1: '<s>', 2: '</s>' };

/** The HF (SentencePiece) form of each piece: ▁ for space, <s>/</s> for the control pieces. */
export function hfPieces(tok: Llama2cTokenizer): string[] {
  return tok.pieces.map((p, id) => CONTROL[id] ?? p.piece.replaceAll(' ', SPACE));
}

/**
 * BPE merges reproducing run.c's merge order, as transformers' SentencePieceExtractor
 * builds them: every split (left, right) of a normal piece into two vocab pieces, ranked
 * by the merged piece's score (descending, stable), splits of one piece by (id left, id
 * right). All splits are needed: which one fires depends on what was merged before.
 */
export function llama2cMerges(tok: Llama2cTokenizer): [string, string][] {
  const names = hfPieces(tok);
  const ids = new Map<string, number>();
  names.forEach((n, id) => {
    if (!ids.has(n)) ids.set(n, id);
  });
  const merges: { l: string; r: string; score: number; order: number }[] = [];
  names.forEach((name, id) => {
    if (id in CONTROL || BYTE_PIECE.test(name)) return;
    const chars = [...name];
    const local: { l: string; r: string; li: number; ri: number }[] = [];
    for (let k = 1; k < chars.length; k++) {
      const l = chars.slice(0, k).join('');
      const r = chars.slice(k).join('');
      const li = ids.get(l);
      const ri = ids.get(r);
      if (li !== undefined && ri !== undefined) local.push({ l, r, li, ri });
    }
    local.sort((a, b) => a.li - b.li || a.ri - b.ri);
    for (const m of local) merges.push({ l: m.l, r: m.r, score: tok.pieces[id]?.score ?? 0, order: merges.length });
  });
  merges.sort((a, b) => b.score - a.score || a.order - b.order);
  return merges.map((m) => [m.l, m.r]);
}

/** tokenizer.json (HF tokenizers) for a llama2.c vocabulary; `<s>` added by the post-processor. */
export function llama2cTokenizerToHf(tok: Llama2cTokenizer): Record<string, unknown> {
  const names = hfPieces(tok);
  const vocab: Record<string, number> = {};
  names.forEach((n, id) => {
    if (Object.hasOwn(vocab, n)) {
      throw new FormatError(`llama2.c tokenizer: pieces ${vocab[n]} and ${id} are both ${JSON.stringify(n)}`,
        'a vocabulary must not repeat a piece; re-export the tokenizer');
    }
    vocab[n] = id;
  });
  const special = (id: number): Record<string, unknown> => ({
    id, content: CONTROL[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0), special(1), special(2)],
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'Prepend', prepend: SPACE }, { type: 'Replace', pattern: { String: ' ' }, content: SPACE }],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false,
      vocab,
      merges: llama2cMerges(tok).map(([l, r]) => `${l} ${r}`),
    },
  };
}

/** tokenizer_config.json for the converted tokenizer (LlamaTokenizer, BOS added, no chat template). */
export function llama2cTokenizerConfig(modelMaxLength: number): Record<string, unknown> {
  const added = (content: string): Record<string, unknown> => ({
    content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true,
  });
  return {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: modelMaxLength,
    tokenizer_class: 'LlamaTokenizer',
    added_tokens_decoder: { 0: added('<unk>'), 1: added('<s>'), 2: added('</s>') },
  };
}

/** special_tokens_map.json for the converted tokenizer. */
export const LLAMA2C_SPECIAL_TOKENS_MAP = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' } as const;
