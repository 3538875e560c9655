// The demo model's tokenizer as ordinary Hugging Face files: a WordPiece tokenizer.json
// whose vocabulary is the demo language's words plus single characters (so any text
// still encodes, letter by letter), and a tokenizer_config.json with a two-line chat
// template (`question : ... answer : ...`), so the normal loading, templating and
// masking paths handle the demo like any model.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SPECIAL_TOKENS = ['<unk>', '<s>', '</s>', '<pad>'] as const;
export const BOS_ID = 1;
export const EOS_ID = 2;
export const PAD_ID = 3;

/** `{{ bos }}question : PROMPT answer : COMPLETION{{ eos }}`; the generation prompt ends at "answer :". */
export const DEMO_CHAT_TEMPLATE = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}question : {{ message['content'] }} answer :"
  + "{% elif message['role'] == 'assistant' %} {{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

const CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789'.split('');
const PUNCT = ['.', ',', '?', '!', ':', ';', "'", '"', '-', '(', ')'];

/** Token strings in id order: specials, words, characters, continuation characters. */
export function vocabulary(words: readonly string[]): string[] {
  const out: string[] = [...SPECIAL_TOKENS];
  const seen = new Set<string>(out);
  const add = (t: string): void => {
    if (!seen.has(t)) {
      seen.add(t);
      out.push(t);
    }
  };
  for (const w of words) add(w);
  for (const c of [...CHARS, ...PUNCT]) add(c);
  for (const c of CHARS) add(`##${c}`);
  return out;
}

export function tokenizerJson(vocab: readonly string[]): Record<string, unknown> {
  const added = SPECIAL_TOKENS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [BOS_ID], tokens: ['<s>'] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '<unk>',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab.map((t, i) => [t, i])),
    },
  };
}

/** Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into dir. */
export function writeTokenizerFiles(dir: string, vocab: readonly string[]): void {
  const special = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: '<pad>' };
  writeFileSync(join(dir, 'tokenizer.json'), `${JSON.stringify(tokenizerJson(vocab))}\n`);
  writeFileSync(join(dir, 'tokenizer_config.json'), `${JSON.stringify({ ...special, chat_template: DEMO_CHAT_TEMPLATE, clean_up_tokenization_spaces: false, model_max_length: 256 }, null, 2)}\n`);
  writeFileSync(join(dir, 'special_tokens_map.json'), `${JSON.stringify(special, null, 2)}\n`);
}
