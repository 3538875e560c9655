// Chat templates: render a model's Jinja chat template the way transformers'
// apply_chat_template does (trim_blocks + lstrip_blocks, raise_exception, tojson), using
// @huggingface/jinja, whose Template turns both block options on by default.
import { Template } from '@huggingface/jinja';
import { ConfigError, FormatError } from '../errors.js';

/** One chat message, as in transformers' `messages` list. */
export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

/** A JSON-schema function spec as passed to `tools` (OpenAI / transformers shape). */
export type ToolSpec = Record<string, unknown>;

export interface RenderOptions {
  /** Append the assistant header so the model continues as the assistant. */
  addGenerationPrompt?: boolean;
  /** Function specs for tool-calling templates; null/undefined means none (rendered as `none`). */
  tools?: ToolSpec[] | null;
  /** Special-token strings passed as template variables (bos_token, eos_token, ...). */
  specialTokens?: Record<string, string>;
  /** Extra template variables (e.g. `enable_thinking`, `date_string`). */
  extra?: Record<string, unknown>;
}

/** The special-token fields transformers passes to templates (its SPECIAL_TOKENS_ATTRIBUTES). */
export const SPECIAL_TOKEN_KEYS = [
  'bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token',
] as const;

/**
 * The string of a special-token field: tokenizer_config stores either a plain string, null,
 * or an AddedToken object `{content: "...", lstrip, ...}` (sometimes with `__type`).
 */
export function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && 'content' in value && typeof value.content === 'string') {
    return value.content;
  }
  return undefined;
}

/**
 * Special-token strings of a tokenizer_config object (falling back to special_tokens_map
 * for fields the config lacks); null or missing tokens are left out, as transformers does.
 */
export function specialTokenStrings(
  config: Record<string, unknown>, specialTokensMap: Record<string, unknown> = {},
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of SPECIAL_TOKEN_KEYS) {
    const raw = key in config ? config[key] : specialTokensMap[key];
    const value = tokenContent(raw);
    if (value !== undefined) out[key] = value;
    else if (raw !== undefined && raw !== null) {
      throw new FormatError(`${key in config ? 'tokenizer_config.json' : 'special_tokens_map.json'}: field "${key}" is ${JSON.stringify(raw)}, not a token string or {"content": "..."}`,
        `fix "${key}" in the file (e.g. "${key}": "</s>") or set it to null`);
    }
  }
  return out;
}

/**
 * The chat template in a tokenizer_config object: a string, or a list of named templates
 * `[{name, template}]` from which "default" is taken. Undefined when there is none.
 */
export function chatTemplateOf(config: Record<string, unknown>, file = 'tokenizer_config.json'): string | undefined {
  const value = config['chat_template'];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    for (const entry of value) {
      if (entry !== null && typeof entry === 'object' && 'name' in entry && 'template' in entry
        && entry.name === 'default' && typeof entry.template === 'string') return entry.template;
    }
  }
  throw new FormatError(`${file}: field "chat_template" is neither a string nor a list holding a {name: "default", template} entry`,
    'fix or remove chat_template in the file, or pass a template explicitly');
}

const templateCache = new Map<string, Template>();

/** Parse once per distinct template string (parsing a large template costs milliseconds). */
function compile(template: string): Template {
  let t = templateCache.get(template);
  if (t === undefined) {
    try {
      t = new Template(template);
    } catch (e) {
      throw new FormatError(`chat template does not parse: ${(e as Error).message}`,
        'check the Jinja syntax of the template (tokenizer_config.json chat_template or the .jinja file)');
    }
    if (templateCache.size > 32) templateCache.clear();
    templateCache.set(template, t);
  }
  return t;
}

/**
 * Render `template` for `messages` exactly as transformers' apply_chat_template(tokenize=False).
 * raise_exception is @huggingface/jinja's built-in (it cannot be redefined), so a template's
 * own rejection and a runtime failure both surface as ConfigError with the template's message.
 */
export function renderChatTemplate(template: string, messages: ChatMessage[], opts: RenderOptions = {}): string {
  const vars: Record<string, unknown> = {
    ...(opts.extra ?? {}),
    ...(opts.specialTokens ?? {}),
    messages,
    add_generation_prompt: opts.addGenerationPrompt ?? false,
    tools: opts.tools ?? null,
  };
  const compiled = compile(template);
  try {
    return compiled.render(vars);
  } catch (e) {
    throw new ConfigError(`chat template failed on these messages: ${(e as Error).message}`,
      'fix the messages as the template requires (roles, user/assistant alternation, system message first), or pass missing template variables via extra');
  }
}
