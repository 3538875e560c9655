// Exact-match accuracy by greedy generation. An evaluation row has a reference answer
// when its tokenized example masks a prompt (prompt/completion, alpaca, messages,
// sharegpt, GSM8K question/answer): the prompt is every token before the first labelled
// one, rendered by the same template training used, and the reference is the labelled
// span (without its EOS). Plain `text` rows label every token and have no reference.
//
// The rule (docs/compare.md): both texts are normalized (lowercased, whitespace
// collapsed, trimmed, trailing sentence punctuation dropped) and must be equal; when the
// reference carries a GSM8K final answer (`#### N`), only the final number is compared:
// the generation's own `#### N`, else the last number it contains.
import type { Example } from '../data/index.js';
import { IGNORE_INDEX } from '../data/template.js';
import type { Decoder, GenerateOptions } from '../generate/generate.js';
import { generate } from '../generate/generate.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

/** One evaluation row with a reference: its prompt ids and the reference answer's ids. */
export interface ReferenceRow {
  promptIds: number[];
  referenceIds: number[];
}

/** Rows of `examples` that have a prompt and a labelled answer after it, in order. */
export function referenceRows(examples: readonly Example[], eosIds: readonly number[]): ReferenceRow[] {
  const rows: ReferenceRow[] = [];
  for (const ex of examples) {
    const first = ex.labels.findIndex((l) => l !== IGNORE_INDEX);
    if (first <= 0) continue; // no answer, or no prompt (a text row)
    let end = first;
    while (end < ex.labels.length && ex.labels[end] !== IGNORE_INDEX) end++;
    const ref = ex.inputIds.slice(first, end);
    while (ref.length > 0 && eosIds.includes(ref[ref.length - 1] ?? -1)) ref.pop();
    if (ref.length === 0) continue;
    rows.push({ promptIds: ex.inputIds.slice(0, first), referenceIds: ref });
  }
  return rows;
}

/** Lowercase, collapse whitespace, trim, drop trailing `.!?` and spaces. */
export function normalizeAnswer(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').trim().replace(/[\s.!?]+$/, '');
}

const GSM8K_FINAL = /####\s*(-?[\d,]*\.?\d+)/;

/** A number as GSM8K writes it, without thousands separators or a trailing ".0". */
function canonicalNumber(s: string): string {
  const n = Number(s.replace(/,/g, ''));
  return Number.isFinite(n) ? String(n) : s;
}

/** The final answer of a GSM8K-style text: its `#### N`, else its last number. */
export function finalNumber(text: string): string | undefined {
  const tagged = GSM8K_FINAL.exec(text);
  if (tagged?.[1] !== undefined) return canonicalNumber(tagged[1]);
  const all = text.match(/-?[\d,]*\.?\d+/g);
  const last = all?.[all.length - 1];
  return last === undefined ? undefined : canonicalNumber(last);
}

/** Whether `generated` answers like `reference` under the rule in the header. */
export function answersMatch(generated: string, reference: string): boolean {
  if (GSM8K_FINAL.test(reference)) return finalNumber(generated) === finalNumber(reference);
  return normalizeAnswer(generated) === normalizeAnswer(reference);
}

export interface ExactMatchResult {
  /** Fraction of scored rows answered exactly (0 when none were scored). */
  accuracy: number;
  correct: number;
  rows: number;
  /** Up to `keepSamples` (prompt, reference, generated) triples, for reports. */
  samples: Array<{ prompt: string; reference: string; generated: string; match: boolean }>;
}

export interface ExactMatchOptions {
  /** Score at most this many rows (the first ones). */
  maxRows: number;
  /** New tokens allowed past the reference's length (the answer must end with EOS or fit). */
  slackTokens?: number;
  keepSamples?: number;
}

/**
 * Greedy-generates an answer for each reference row (at most reference length + slack
 * new tokens, stopping at EOS) and scores it with answersMatch.
 */
export function exactMatch(model: Decoder, tokenizer: Tokenizer, rows: readonly ReferenceRow[], opts: ExactMatchOptions): ExactMatchResult {
  const picked = rows.slice(0, opts.maxRows);
  const slack = opts.slackTokens ?? 8;
  const samples: ExactMatchResult['samples'] = [];
  let correct = 0;
  for (const row of picked) {
    const gen: GenerateOptions = { maxNewTokens: row.referenceIds.length + slack, temperature: 0 };
    const out = generate(model, row.promptIds, gen).slice(row.promptIds.length);
    const generated = tokenizer.decode(out, { skipSpecialTokens: true });
    const reference = tokenizer.decode(row.referenceIds, { skipSpecialTokens: true });
    const match = answersMatch(generated, reference);
    if (match) correct++;
    if (samples.length < (opts.keepSamples ?? 3)) samples.push({ prompt: tokenizer.decode(row.promptIds, { skipSpecialTokens: true }), reference, generated, match });
  }
  return { accuracy: picked.length > 0 ? correct / picked.length : 0, correct, rows: picked.length, samples };
}
