// Conversations to token ids with loss masks. A Renderer turns a message list into text
// (the tokenizer's Jinja chat template, or a built-in default when it has none); the
// assistant spans are found by rendering each turn's prefix and tokenizing it, so the
// labels follow exactly the tokens the model sees (docs/data-formats.md, "Masking").
import { ConfigError, FormatError } from '../errors.js';
import type { ChatMessage, ToolSpec } from '../tokenizer/chat-template.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { InstructionParts, RowSource } from './formats.js';

/** Label of a position that carries no loss (PyTorch's CrossEntropyLoss ignore_index). */
export const IGNORE_INDEX = -100;

/** Renders a message prefix; `addSpecialTokens` says how its text must be encoded. */
export interface Renderer {
  render(messages: ChatMessage[], addGenerationPrompt: boolean): string;
  /** Jinja templates write BOS themselves (false); the defaults rely on the post-processor (true). */
  addSpecialTokens: boolean;
}

/** Stanford Alpaca's prompts (tatsu-lab/stanford_alpaca train.py PROMPT_DICT), verbatim. */
const ALPACA_PREAMBLE_INPUT = 'Below is an instruction that describes a task, paired with an input that provides further context. '
  + 'Write a response that appropriately completes the request.';
const ALPACA_PREAMBLE = 'Below is an instruction that describes a task. Write a response that appropriately completes the request.';

/** The Alpaca prompt for one instruction; a system message replaces the preamble sentence. */
export function alpacaPrompt(parts: InstructionParts, system?: string): string {
  const preamble = system ?? (parts.input === '' ? ALPACA_PREAMBLE : ALPACA_PREAMBLE_INPUT);
  const input = parts.input === '' ? '' : `### Input:\n${parts.input}\n\n`;
  return `${preamble}\n\n### Instruction:\n${parts.instruction}\n\n${input}### Response:`;
}

/** Jinja chat template of the tokenizer (rendered as transformers' apply_chat_template). */
export function jinjaRenderer(tokenizer: Tokenizer, tools?: ToolSpec[]): Renderer {
  return {
    render: (messages, addGenerationPrompt) => tokenizer.applyChatTemplate(messages, { addGenerationPrompt, tools: tools ?? null }),
    addSpecialTokens: false,
  };
}

/**
 * Default for alpaca and prompt-completion rows without a chat template: each user turn
 * is the Alpaca prompt of its instruction parts, each assistant turn its text plus EOS;
 * turns are separated by a blank line.
 */
export function alpacaRenderer(instructions: InstructionParts[], eosToken: string): Renderer {
  return {
    render(messages) {
      let system: string | undefined;
      let user = 0;
      const turns: string[] = [];
      for (const m of messages) {
        if (m.role === 'system') system = m.content;
        else if (m.role === 'user') turns.push(alpacaPrompt(instructions[user++] ?? { instruction: m.content, input: '' }, system));
        else turns[turns.length - 1] = `${turns[turns.length - 1] ?? ''}${m.content}${eosToken}`;
      }
      return turns.join('\n\n');
    },
    addSpecialTokens: true,
  };
}

const TRANSCRIPT_HEADERS: Record<string, string> = {
  system: '### System:\n', user: '### User:\n', assistant: '### Assistant:\n', tool: '### Tool:\n',
};

/**
 * Default for messages and sharegpt rows without a chat template: `### User:\n...`
 * blocks separated by blank lines; an assistant turn ends with EOS; the generation
 * prompt is `### Assistant:\n`. Tool specs, if any, open the text as a `### Tools:` block.
 */
export function transcriptRenderer(eosToken: string, tools?: ToolSpec[]): Renderer {
  const head = tools === undefined || tools.length === 0 ? [] : [`### Tools:\n${JSON.stringify(tools)}`];
  return {
    render(messages, addGenerationPrompt) {
      const turns = head.concat(messages.map((m) => `${TRANSCRIPT_HEADERS[m.role] ?? `### ${m.role}:\n`}${m.content}${m.role === 'assistant' ? eosToken : ''}`));
      if (addGenerationPrompt) turns.push(TRANSCRIPT_HEADERS['assistant'] ?? '');
      return turns.join('\n\n');
    },
    addSpecialTokens: true,
  };
}

function commonPrefix<T>(a: ArrayLike<T>, b: ArrayLike<T>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Ids (labels all IGNORE_INDEX when masked) of one conversation. */
export interface Encoded {
  inputIds: number[];
  labels: number[];
}

/**
 * Token ids of a conversation with loss on the assistant turns only (or on every token
 * with trainOnPrompt). For assistant turn i the span is [s, e): s = tokens of the prefix
 * before it rendered with the generation prompt, e = tokens of the prefix including it.
 * Each boundary is the longest common token prefix of the full encoding and the encoding
 * of the full text cut where the prefix text stops matching it, which equals the prefix's
 * own token count when its tokenization is a prefix of the full one and otherwise moves
 * the boundary back to the first token that differs (a token merged across the boundary
 * is trained on; trailing text a template adds only at the very end is not).
 */
export function encodeConversation(messages: ChatMessage[], tokenizer: Tokenizer, renderer: Renderer,
  trainOnPrompt: boolean, src: RowSource): Encoded {
  const render = (msgs: ChatMessage[], gen: boolean): string => {
    try {
      return renderer.render(msgs, gen);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      const why = (e.message.split('\nhint:')[0] ?? '').replace(/^chat template failed on these messages: /, '');
      throw new FormatError(`${src.path}:${src.line}: the chat template rejected this conversation: ${why}`,
        'fix the roles/order of the messages as the model\'s template requires (many templates have no "tool" role '
        + 'for tool results/observations, or no "system" role), or drop the row');
    }
  };
  const encode = (text: string): number[] => tokenizer.encode(text, { addSpecialTokens: renderer.addSpecialTokens });
  const full = render(messages, false);
  const inputIds = encode(full);
  if (trainOnPrompt) return { inputIds, labels: inputIds.slice() };
  const boundary = (prefix: string): number => {
    const chars = prefix.length <= full.length && full.startsWith(prefix) ? prefix.length : commonPrefix(prefix, full);
    return chars === full.length ? inputIds.length : commonPrefix(encode(full.slice(0, chars)), inputIds);
  };
  const labels = new Array<number>(inputIds.length).fill(IGNORE_INDEX);
  let done = 0;
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const start = Math.max(done, boundary(render(messages.slice(0, i), true)));
    const end = boundary(render(messages.slice(0, i + 1), false));
    for (let t = start; t < end; t++) labels[t] = inputIds[t] ?? IGNORE_INDEX;
    done = Math.max(done, end);
  });
  return { inputIds, labels };
}
