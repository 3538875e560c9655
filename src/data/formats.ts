// Dataset row formats: detection from the fields, and conversion of one row into a
// Sample (plain text, or a conversation of system/user/assistant/tool messages) with
// errors that name the file, line and field. docs/data-formats.md describes each format.
import { FormatError } from '../errors.js';
import type { ChatMessage, ToolSpec } from '../tokenizer/chat-template.js';
import type { LocatedRow, Row } from './read.js';

export type DataFormat = 'text' | 'prompt-completion' | 'alpaca' | 'messages' | 'sharegpt';

export const DATA_FORMATS: readonly DataFormat[] = ['text', 'prompt-completion', 'alpaca', 'messages', 'sharegpt'];

/** The fields that identify each format (any one alternative suffices). */
const SIGNATURES: Record<DataFormat, string[][]> = {
  text: [['text']],
  'prompt-completion': [['prompt', 'completion'], ['question', 'answer']],
  alpaca: [['instruction', 'output']],
  messages: [['messages']],
  sharegpt: [['conversations']],
};

function describeFormats(): string {
  return DATA_FORMATS.map((f) => `${f} (${SIGNATURES[f].map((s) => s.join('+')).join(' or ')})`).join(', ');
}

/** An Alpaca-style instruction and input behind a user turn (for the default prompt). */
export interface InstructionParts {
  instruction: string;
  input: string;
}

/** What one row becomes before templating. */
export type Sample =
  | { kind: 'text'; text: string }
  | {
    kind: 'chat';
    /** Roles: system, user, assistant, tool. */
    messages: ChatMessage[];
    tools?: ToolSpec[];
    /** For alpaca and prompt-completion rows: the parts of each user turn, in order. */
    instructions?: InstructionParts[];
  };

/** Where a row came from, for error messages. */
export interface RowSource {
  path: string;
  line: number;
}

function fail(src: RowSource, problem: string, hint: string): never {
  throw new FormatError(`${src.path}:${src.line}: ${problem}`, hint);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  return Array.isArray(v) ? 'array' : typeof v;
}

/**
 * The format of a dataset, from the fields of its first row. `text` yields to any other
 * match (tatsu-lab/alpaca rows carry a pre-rendered `text` next to instruction/output);
 * two other matches, or none, are a FormatError naming the fields and the formats.
 */
export function detectFormat(rows: readonly LocatedRow[], path: string): DataFormat {
  const first = rows[0];
  if (first === undefined) throw new FormatError(`${path}: empty dataset (no rows)`, 'add at least one example to the file');
  const keys = Object.keys(first.row);
  const has = (k: string): boolean => keys.includes(k);
  const matches = DATA_FORMATS.filter((f) => SIGNATURES[f].some((sig) => sig.every(has)));
  const structured = matches.filter((f) => f !== 'text');
  const fields = keys.length === 0 ? '(none)' : keys.map((k) => `"${k}"`).join(', ');
  if (structured.length > 1) {
    throw new FormatError(`${path}:${first.line}: ambiguous dataset format: fields ${fields} match ${structured.join(' and ')}`,
      `name the format with --format (one of ${DATA_FORMATS.join(', ')})`);
  }
  const found = structured[0] ?? matches[0];
  if (found === undefined) {
    throw new FormatError(`${path}:${first.line}: unknown dataset format: fields ${fields}; the formats are ${describeFormats()}`,
      'rename the fields to one of these formats, or name the format with --format');
  }
  return found;
}

function stringField(row: Row, key: string, src: RowSource, hint: string): string {
  const v = row[key];
  if (v === undefined) fail(src, `missing field "${key}"`, hint);
  if (typeof v !== 'string') fail(src, `field "${key}" is ${typeName(v)}, expected a string`, hint);
  return v;
}

function optionalString(row: Row, key: string, src: RowSource): string | undefined {
  const v = row[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') fail(src, `field "${key}" is ${typeName(v)}, expected a string`, `make "${key}" a string or remove it`);
  return v;
}

/** `tools`: a list of function specs, or a JSON string holding one (as in glaive/LLaMA-Factory). */
function toolsField(row: Row, src: RowSource): ToolSpec[] | undefined {
  let v = row['tools'];
  if (v === undefined || v === null || v === '') return undefined;
  const hint = '"tools" is a list of function specs ({name, description, parameters}) or a JSON string of one';
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      fail(src, 'field "tools" is a string but not valid JSON', hint);
    }
  }
  if (!Array.isArray(v) || !v.every((t) => t !== null && typeof t === 'object' && !Array.isArray(t))) {
    fail(src, `field "tools" is ${typeName(v)}, expected a list of objects`, hint);
  }
  return v as ToolSpec[];
}

function textSample(row: Row, src: RowSource): Sample {
  const text = stringField(row, 'text', src, 'a text row is {"text": "..."}');
  if (text === '') fail(src, 'field "text" is empty', 'remove empty rows');
  return { kind: 'text', text };
}

function promptCompletionSample(row: Row, src: RowSource): Sample {
  const [pk, ck] = 'prompt' in row || !('question' in row) ? ['prompt', 'completion'] : ['question', 'answer'];
  const hint = 'a prompt-completion row is {"prompt": "...", "completion": "..."} (or {"question", "answer"}) with string values';
  const prompt = stringField(row, pk, src, hint);
  const completion = stringField(row, ck, src, hint);
  return {
    kind: 'chat',
    messages: [{ role: 'user', content: prompt }, { role: 'assistant', content: completion }],
    instructions: [{ instruction: prompt, input: '' }],
  };
}

function alpacaSample(row: Row, src: RowSource): Sample {
  const hint = 'an alpaca row is {"instruction": "...", "input": "...", "output": "..."} ("input", "system", "history" optional)';
  const instruction = stringField(row, 'instruction', src, hint);
  const output = stringField(row, 'output', src, hint);
  const input = optionalString(row, 'input', src) ?? '';
  const system = optionalString(row, 'system', src);
  const messages: ChatMessage[] = system !== undefined && system !== '' ? [{ role: 'system', content: system }] : [];
  const instructions: InstructionParts[] = [];
  const history = row['history'];
  if (history !== undefined && history !== null) {
    const ok = Array.isArray(history)
      && history.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === 'string' && typeof h[1] === 'string');
    if (!ok) fail(src, 'field "history" is not a list of [instruction, response] string pairs', 'write "history": [["q1", "a1"], ["q2", "a2"]] or remove it');
    for (const [q, a] of history as Array<[string, string]>) {
      messages.push({ role: 'user', content: q }, { role: 'assistant', content: a });
      instructions.push({ instruction: q, input: '' });
    }
  }
  messages.push({ role: 'user', content: input === '' ? instruction : `${instruction}\n${input}` });
  messages.push({ role: 'assistant', content: output });
  instructions.push({ instruction, input });
  return { kind: 'chat', messages, instructions };
}

const ROLES = ['system', 'user', 'assistant', 'tool'];

function messagesSample(row: Row, src: RowSource): Sample {
  const list = row['messages'];
  const hint = 'a messages row is {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}';
  if (!Array.isArray(list)) fail(src, `field "messages" is ${typeName(list)}, expected a list`, hint);
  if (list.length === 0) fail(src, 'field "messages" is an empty conversation', 'remove the row or add its messages');
  const messages = list.map((m: unknown, i): ChatMessage => {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) fail(src, `messages[${i}] is ${typeName(m)}, expected an object`, hint);
    const msg = m as Row;
    const role = msg['role'];
    if (typeof role !== 'string') fail(src, `messages[${i}].role is ${typeName(role)}, expected a string`, hint);
    if (!ROLES.includes(role)) fail(src, `messages[${i}].role "${role}" is unknown`, `roles are ${ROLES.join(', ')}`);
    let content = msg['content'];
    // OpenAI-style tool calls may carry null content; the template renders tool_calls.
    if ((content === null || content === undefined) && msg['tool_calls'] !== undefined) content = '';
    if (typeof content !== 'string') fail(src, `messages[${i}].content is ${typeName(content)}, expected a string`, hint);
    return { ...msg, role, content };
  });
  const tools = toolsField(row, src);
  return tools === undefined ? { kind: 'chat', messages } : { kind: 'chat', messages, tools };
}

/**
 * ShareGPT speakers to chat roles. A function_call is the model's output (an assistant
 * turn, trained on, as LLaMA-Factory does); an observation is the tool's reply.
 */
const SHAREGPT_ROLES: Record<string, string> = {
  human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant', system: 'system',
  function_call: 'assistant', observation: 'tool', tool: 'tool',
};

function sharegptSample(row: Row, src: RowSource): Sample {
  const list = row['conversations'];
  const hint = 'a sharegpt row is {"conversations": [{"from": "human", "value": "..."}, {"from": "gpt", "value": "..."}]}';
  if (!Array.isArray(list)) fail(src, `field "conversations" is ${typeName(list)}, expected a list`, hint);
  if (list.length === 0) fail(src, 'field "conversations" is an empty conversation', 'remove the row or add its turns');
  const system = optionalString(row, 'system', src);
  const messages: ChatMessage[] = system !== undefined && system !== '' ? [{ role: 'system', content: system }] : [];
  list.forEach((m: unknown, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) fail(src, `conversations[${i}] is ${typeName(m)}, expected an object`, hint);
    const turn = m as Row;
    const from = turn['from'];
    const value = turn['value'];
    if (typeof from !== 'string') fail(src, `conversations[${i}].from is ${typeName(from)}, expected a string`, hint);
    const role = SHAREGPT_ROLES[from];
    if (role === undefined) fail(src, `conversations[${i}].from "${from}" is unknown`, `speakers are ${Object.keys(SHAREGPT_ROLES).join(', ')}`);
    if (typeof value !== 'string') fail(src, `conversations[${i}].value is ${typeName(value)}, expected a string`, hint);
    messages.push({ role, content: value });
  });
  const tools = toolsField(row, src);
  return tools === undefined ? { kind: 'chat', messages } : { kind: 'chat', messages, tools };
}

const CONVERTERS: Record<DataFormat, (row: Row, src: RowSource) => Sample> = {
  text: textSample,
  'prompt-completion': promptCompletionSample,
  alpaca: alpacaSample,
  messages: messagesSample,
  sharegpt: sharegptSample,
};

/** One row as a Sample, validating every field the format needs. */
export function toSample(row: Row, format: DataFormat, src: RowSource): Sample {
  return CONVERTERS[format](row, src);
}
