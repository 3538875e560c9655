// Small real training sets for tests: Tiny Shakespeare passages as `text` rows, tokenized
// with the stories260K tokenizer (a domain the TinyStories model has not seen, so
// fine-tuning visibly lowers the held-out loss).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset, type Example } from '../../src/data/index.js';
import type { Tokenizer } from '../../src/tokenizer/tokenizer.js';

/** Writes `rows` passages of `lines` lines each (from line `from`) as JSONL; returns the path. */
export function shakespeareJsonl(textPath: string, from: number, rows: number, lines = 4): string {
  const all = readFileSync(textPath, 'utf8').split('\n');
  const out: string[] = [];
  for (let r = 0; r < rows; r++) {
    const text = all.slice(from + r * lines, from + (r + 1) * lines).join('\n');
    out.push(JSON.stringify({ text }));
  }
  const path = join(mkdtempSync(join(tmpdir(), 'ftune-data-')), 'data.jsonl');
  writeFileSync(path, `${out.join('\n')}\n`);
  return path;
}

export function shakespeare(textPath: string, tokenizer: Tokenizer, from: number, rows: number, maxLength = 64): Example[] {
  return loadDataset(shakespeareJsonl(textPath, from, rows), tokenizer, { maxLength });
}
