// The files that make up a tokenizer directory, and copying them next to a saved model
// so the output directory loads on its own (ftune and Transformers alike). Each copy is
// written atomically (temp file, fsync, rename, directory fsync).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeAllSync, writeFileAtomic } from '../io/atomic.js';

export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'tokenizer.model'] as const;

/** Copies whichever tokenizer files exist in `from` into `to`; returns their names. */
export function copyTokenizerFiles(from: string, to: string): string[] {
  const copied: string[] = [];
  for (const f of TOKENIZER_FILES) {
    if (existsSync(join(from, f))) {
      const bytes = readFileSync(join(from, f));
      writeFileAtomic(join(to, f), (fd) => writeAllSync(fd, bytes));
      copied.push(f);
    }
  }
  return copied;
}
