// The files that make up a tokenizer directory, and copying them next to a saved model
// so the output directory loads on its own (ftune and Transformers alike).
import { copyFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';

export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'tokenizer.model'] as const;

/** Copies whichever tokenizer files exist in `from` into `to`; returns their names. */
export function copyTokenizerFiles(from: string, to: string): string[] {
  const copied: string[] = [];
  for (const f of TOKENIZER_FILES) {
    if (existsSync(join(from, f))) {
      const tmp = join(to, `.${f}.tmp-${process.pid}`);
      copyFileSync(join(from, f), tmp);
      renameSync(tmp, join(to, f));
      copied.push(f);
    }
  }
  return copied;
}
