// Tokenizer: HF tokenizer.json + tokenizer_config.json through @huggingface/tokenizers,
// with transformers' naming (AutoTokenizer.fromPretrained, encode/decode, special-token
// ids) and chat templates rendered by @huggingface/jinja (see chat-template.ts).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ConfigError, FormatError, IoError } from '../errors.js';
import { resolvePretrained, resolvePretrainedSync, type HubOptions } from '../io/hub.js';
import {
  chatTemplateOf, renderChatTemplate, specialTokenStrings,
  type ChatMessage, type ToolSpec,
} from './chat-template.js';
import { DecodeStream } from './decode-stream.js';

export type JsonObject = Record<string, unknown>;

export interface EncodeOptions {
  /** Run the post-processor (e.g. prepend `<s>`); default true, as in transformers. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /** transformers' clean_up_tokenization_spaces; defaults to the tokenizer_config value (false if absent). */
  cleanUpTokenizationSpaces?: boolean;
}

export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  tools?: ToolSpec[] | null;
  /** Return token ids (encoded without adding special tokens, as transformers does). */
  tokenize?: boolean;
  /** Override the tokenizer's own template. */
  chatTemplate?: string;
  /** Extra template variables. */
  extra?: Record<string, unknown>;
}

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Read and parse a JSON object file, with FormatError/IoError naming the file. */
export function readJsonObject(path: string): JsonObject {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new IoError(`cannot read ${path}: ${(e as Error).message}`, 'check that the file exists and is readable');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${path}: not valid JSON (${(e as Error).message})`,
      'the file is truncated or not JSON; re-download it');
  }
  if (!isObject(value)) throw new FormatError(`${path}: expected a JSON object at the top level`, 're-download the file');
  return value;
}

/** Check the fields of tokenizer.json that the library needs, naming the bad one. */
function validateTokenizerJson(json: JsonObject, file: string): void {
  const model = json['model'];
  if (!isObject(model)) {
    throw new FormatError(`${file}: field "model" is missing or not an object`,
      'this is not a Hugging Face tokenizers file (tokenizer.json); a SentencePiece tokenizer.model must be converted first');
  }
  if (typeof model['type'] !== 'string' && !isObject(model['vocab']) && !Array.isArray(model['vocab'])) {
    throw new FormatError(`${file}: field "model.type" is missing and "model.vocab" is not a vocabulary`,
      're-save the tokenizer with a recent `tokenizers` version');
  }
  if (!isObject(model['vocab']) && !Array.isArray(model['vocab'])) {
    throw new FormatError(`${file}: field "model.vocab" is missing or not an object/array`, 're-download tokenizer.json');
  }
  if (json['added_tokens'] !== undefined && !Array.isArray(json['added_tokens'])) {
    throw new FormatError(`${file}: field "added_tokens" is not an array`, 're-download tokenizer.json');
  }
}

/** Number of ids a model must embed: 1 + the largest id in the vocab or the added tokens. */
function idSpan(json: JsonObject): number {
  let max = -1;
  const model = json['model'];
  const vocab = isObject(model) ? model['vocab'] : undefined;
  if (Array.isArray(vocab)) max = vocab.length - 1;
  else if (isObject(vocab)) for (const id of Object.values(vocab)) if (typeof id === 'number' && id > max) max = id;
  const added = json['added_tokens'];
  if (Array.isArray(added)) {
    for (const t of added) if (isObject(t) && typeof t['id'] === 'number' && t['id'] > max) max = t['id'];
  }
  return max + 1;
}

export class Tokenizer {
  readonly #hf: HfTokenizer;
  readonly #special: Record<string, string>;
  readonly #cleanUp: boolean;
  readonly vocabSize: number;
  readonly chatTemplate: string | undefined;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  readonly bosTokenId: number | undefined;
  readonly eosTokenId: number | undefined;
  /** Ids that end generation from the tokenizer's side (generation_config.json may add more). */
  readonly eosTokenIds: number[];
  readonly padTokenId: number | undefined;
  readonly unkTokenId: number | undefined;
  /** The directory the tokenizer was loaded from (its files are copied next to saved models). */
  dir: string | undefined;

  /**
   * From parsed tokenizer.json and tokenizer_config.json objects (special_tokens_map.json
   * fills fields the config lacks). `source` names the files in errors.
   */
  constructor(tokenizerJson: JsonObject, tokenizerConfig: JsonObject = {}, specialTokensMap: JsonObject = {},
    source = 'tokenizer.json', chatTemplate?: string) {
    validateTokenizerJson(tokenizerJson, source);
    // Encoding never truncates or pads: gpt2's file carries a stray truncation.max_length = 50.
    const json: JsonObject = { ...tokenizerJson, truncation: null, padding: null };
    this.#special = specialTokenStrings(tokenizerConfig, specialTokensMap);
    // transformers (>= 4.45) defaults clean_up_tokenization_spaces to false; the library to true.
    this.#cleanUp = tokenizerConfig['clean_up_tokenization_spaces'] === true;
    const libConfig: JsonObject = { ...tokenizerConfig, ...this.#special, clean_up_tokenization_spaces: this.#cleanUp };
    for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token'] as const) {
      if (!(key in this.#special)) delete libConfig[key];
    }
    try {
      this.#hf = new HfTokenizer(json, libConfig);
    } catch (e) {
      throw new FormatError(`${source}: @huggingface/tokenizers rejected the file: ${(e as Error).message}`,
        'the file uses a component this library lacks, or is corrupt; re-download it');
    }
    this.vocabSize = idSpan(json);
    this.chatTemplate = chatTemplate ?? chatTemplateOf(tokenizerConfig);
    this.bosToken = this.#special['bos_token'];
    this.eosToken = this.#special['eos_token'];
    this.bosTokenId = this.#idOf(this.bosToken);
    this.eosTokenId = this.#idOf(this.eosToken);
    this.padTokenId = this.#idOf(this.#special['pad_token']);
    this.unkTokenId = this.#idOf(this.#special['unk_token']);
    this.eosTokenIds = this.eosTokenId === undefined ? [] : [this.eosTokenId];
  }

  /**
   * Load a tokenizer directory: tokenizer.json (required), tokenizer_config.json,
   * special_tokens_map.json and chat_template.jinja (optional).
   */
  static fromDir(dir: string): Tokenizer {
    const tokPath = join(dir, 'tokenizer.json');
    if (!existsSync(tokPath)) {
      throw new FormatError(`${dir}: no tokenizer.json`,
        existsSync(join(dir, 'tokenizer.model'))
          ? 'only a SentencePiece tokenizer.model is present; save a fast tokenizer (tokenizer.json) with transformers first'
          : 'pass the model directory that holds tokenizer.json (and tokenizer_config.json)');
    }
    const opt = (name: string): JsonObject => (existsSync(join(dir, name)) ? readJsonObject(join(dir, name)) : {});
    const tplPath = join(dir, 'chat_template.jinja');
    const template = existsSync(tplPath) ? readFileSync(tplPath, 'utf8') : undefined;
    const tokenizer = new Tokenizer(readJsonObject(tokPath), opt('tokenizer_config.json'), opt('special_tokens_map.json'), tokPath, template);
    tokenizer.dir = dir;
    return tokenizer;
  }

  #idOf(token: string | undefined): number | undefined {
    return token === undefined ? undefined : this.#hf.token_to_id(token);
  }

  /** Special-token strings by transformers name (bos_token, eos_token, unk_token, pad_token, ...). */
  get specialTokens(): Readonly<Record<string, string>> {
    return this.#special;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.#hf.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  /** Token strings (pieces) of `text`, without special tokens unless asked. */
  tokenize(text: string, opts: EncodeOptions = {}): string[] {
    return this.#hf.tokenize(text, { add_special_tokens: opts.addSpecialTokens ?? false });
  }

  /**
   * Text of `ids`. Ids with no token (e.g. the padding rows of an embedding larger than the
   * vocabulary) are dropped, as HF tokenizers' decode does.
   */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const known = ids.filter((id) => Number.isInteger(id) && this.#hf.id_to_token(id) !== undefined);
    if (known.length === 0) return '';
    return this.#hf.decode(known, {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: opts.cleanUpTokenizationSpaces ?? this.#cleanUp,
    });
  }

  /** An incremental decoder: push ids one at a time, print what it returns. */
  decodeStream(opts: DecodeOptions = {}): DecodeStream {
    return new DecodeStream((ids) => this.decode(ids, opts), opts.cleanUpTokenizationSpaces ?? this.#cleanUp);
  }

  idToToken(id: number): string | undefined {
    return this.#hf.id_to_token(id);
  }

  tokenToId(token: string): number | undefined {
    return this.#hf.token_to_id(token);
  }

  /** Render (or with tokenize: true, encode) a conversation with the tokenizer's chat template. */
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions & { tokenize: true }): number[];
  applyChatTemplate(messages: ChatMessage[], opts?: ChatTemplateOptions & { tokenize?: false }): string;
  applyChatTemplate(messages: ChatMessage[], opts?: ChatTemplateOptions): string | number[];
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string | number[] {
    const template = opts.chatTemplate ?? this.chatTemplate;
    if (template === undefined) {
      throw new ConfigError('this tokenizer has no chat template (tokenizer_config.json has no "chat_template" and there is no chat_template.jinja)',
        'pass chatTemplate explicitly (e.g. the content of a .jinja file), use a chat/instruct model, or format the prompt as plain text');
    }
    const text = renderChatTemplate(template, messages, {
      addGenerationPrompt: opts.addGenerationPrompt ?? false,
      tools: opts.tools ?? null,
      specialTokens: this.#special,
      extra: opts.extra ?? {},
    });
    return opts.tokenize === true ? this.encode(text, { addSpecialTokens: false }) : text;
  }
}

/** transformers-style entry point. */
export const AutoTokenizer = {
  /** From a local directory, or a Hub repo id (org/name[@rev]) downloaded into the HF cache when needed. */
  async fromPretrained(nameOrDir: string, opts: HubOptions = {}): Promise<Tokenizer> {
    return Tokenizer.fromDir(await resolvePretrained(nameOrDir, { ...opts, kind: 'tokenizer' }));
  },
  /** From a local directory, or a Hub repo id already in the HF cache (never downloads). */
  fromPretrainedSync(nameOrDir: string): Tokenizer {
    return Tokenizer.fromDir(resolvePretrainedSync(nameOrDir, { kind: 'tokenizer' }));
  },
};
