// Templating and masking: exact label positions with the default prompts (stories260K,
// no chat template), the Llama-2 [INST] and Phi-3 templates, the fallback when a token
// merges across the prompt/answer boundary, trainOnPrompt, truncation, and the shared
// datasets' assistant spans decoding back to their answers.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  IGNORE_INDEX, alpacaPrompt, loadDataset, readRows, tokenizeRows, type Example, type Row,
} from '../../src/data/index.js';
import { Tokenizer, readJsonObject } from '../../src/tokenizer/tokenizer.js';
import { fixture } from '../helpers/data.js';

const dir = mkdtempSync(join(tmpdir(), 'ftune-data-ds-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const CHAT: Row = {
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi there' },
    { role: 'assistant', content: 'Hello!' },
    { role: 'user', content: 'Bye' },
    { role: 'assistant', content: 'See you.' },
  ],
};

function one(tok: Tokenizer, row: Row, opts: { trainOnPrompt?: boolean; maxLength?: number } = {}): Example {
  const ex = tokenizeRows([{ row, line: 1 }], tok, { path: 'mem.jsonl', ...opts })[0];
  assert.ok(ex);
  assert.equal(ex.labels.length, ex.inputIds.length);
  return ex;
}

/** Contiguous runs of positions with loss, as [start, ids]; checks labels equal ids there. */
function runs(ex: Example): Array<[number, number[]]> {
  const out: Array<[number, number[]]> = [];
  ex.labels.forEach((l, t) => {
    if (l === IGNORE_INDEX) return;
    assert.equal(l, ex.inputIds[t], `label at ${t} equals the input id`);
    const last = out[out.length - 1];
    if (last && last[0] + last[1].length === t) last[1].push(l);
    else out.push([t, [l]]);
  });
  return out;
}

const pieces = (tok: Tokenizer, ex: Example): string[][] => runs(ex).map(([, ids]) => ids.map((id) => tok.idToToken(id) ?? '?'));

function load(t: Parameters<typeof fixture>[0], ...parts: string[]): Tokenizer | undefined {
  const path = fixture(t, ...parts);
  return path ? Tokenizer.fromDir(path) : undefined;
}

test('alpaca without a chat template: Stanford prompt, loss exactly on output + EOS', (t) => {
  const tok = load(t, 'hf_models', 'stories260K-hf');
  if (!tok) return;
  assert.equal(tok.chatTemplate, undefined);
  const ex = one(tok, { instruction: 'Lily', input: '', output: 'Once upon a time' });
  const prompt = tok.encode(alpacaPrompt({ instruction: 'Lily', input: '' }));
  assert.equal(prompt[0], 1, 'BOS from the post-processor');
  assert.deepEqual(ex.inputIds.slice(0, prompt.length), prompt);
  // "O" "n" "ce" "▁upon" "▁a" "▁time" "</s>": the output right after "### Response:" (no space).
  assert.deepEqual(runs(ex), [[prompt.length, [441, 416, 331, 407, 261, 378, 2]]]);
  assert.equal(ex.inputIds.length, prompt.length + 7);
  const withInput = one(tok, { instruction: 'Add', input: '2 3', output: '5' });
  assert.match(tok.decode(withInput.inputIds), /paired with an input[\s\S]*### Input:\n2 3\n\n### Response:5<\/s>$/);
});

test('messages without a chat template: "### User:" transcript, loss on each assistant turn + EOS', (t) => {
  const tok = load(t, 'hf_models', 'stories260K-hf');
  if (!tok) return;
  const ex = one(tok, CHAT);
  assert.deepEqual(pieces(tok, ex), [['H', 'e', 'll', 'o', '!', '</s>'], ['S', 'e', 'e', '▁you', '.', '</s>']]);
  assert.equal(tok.decode(ex.inputIds, { skipSpecialTokens: true }),
    '### System:\nBe brief.\n\n### User:\nHi there\n\n### Assistant:\nHello! \n\n### User:\nBye\n\n### Assistant:\nSee you.');
  const [first] = runs(ex);
  assert.deepEqual(ex.inputIds.slice(0, first?.[0]), tok.encode('### System:\nBe brief.\n\n### User:\nHi there\n\n### Assistant:\n'));
});

test('Llama-2 [INST] template: ids equal apply_chat_template, loss on " answer </s>" tokens', (t) => {
  const tok = load(t, 'tokenizers', 'llama2-tiny-random');
  if (!tok) return;
  const ex = one(tok, CHAT);
  const messages = CHAT['messages'] as Parameters<Tokenizer['applyChatTemplate']>[0];
  assert.deepEqual(ex.inputIds, tok.applyChatTemplate(messages, { tokenize: true }));
  assert.equal(ex.inputIds.filter((id) => id === 1).length, 2, 'one <s> per [INST] turn, none added by the post-processor');
  assert.deepEqual(pieces(tok, ex), [['▁Hello', '!', '▁', '</s>'], ['▁See', '▁you', '.', '▁', '</s>']]);
});

test('Phi-3 template: loss on content + <|end|>, and the closing <|endoftext|> of the last turn', (t) => {
  const tok = load(t, 'tokenizers', 'phi-3-mini');
  if (!tok) return;
  const ex = one(tok, CHAT);
  assert.deepEqual(pieces(tok, ex), [['▁Hello', '!', '<|end|>'], ['▁See', '▁you', '.', '<|end|>', '<|endoftext|>']]);
  const alpaca = one(tok, { instruction: 'Add', input: '2 3', output: '5' });
  assert.equal(tok.decode(alpaca.inputIds), '<|user|> Add\n2 3<|end|><|assistant|> 5<|end|><|endoftext|>');
});

test('a token merged across the prompt/answer boundary is trained on (fallback alignment)', (t) => {
  const path = fixture(t, 'hf_models', 'stories260K-hf');
  if (!path) return;
  // A template with no separator: "Once up" + "on a time" tokenizes as ▁Once ▁upon ▁a ▁time.
  const tok = new Tokenizer(readJsonObject(join(path, 'tokenizer.json')), readJsonObject(join(path, 'tokenizer_config.json')),
    {}, 'tokenizer.json', '{% for m in messages %}{{ m.content }}{% endfor %}');
  assert.deepEqual(tok.encode('Once up', { addSpecialTokens: false }), [403, 350]);
  const ex = one(tok, { prompt: 'Once up', completion: 'on a time' });
  assert.deepEqual(ex.inputIds, [403, 407, 261, 378]);
  assert.deepEqual(ex.labels, [IGNORE_INDEX, 407, 261, 378]);
});

test('trainOnPrompt puts loss on every token; truncation keeps the first maxLength tokens', (t) => {
  const tok = load(t, 'tokenizers', 'llama2-tiny-random');
  if (!tok) return;
  const full = one(tok, CHAT);
  const all = one(tok, CHAT, { trainOnPrompt: true });
  assert.deepEqual(all.inputIds, full.inputIds);
  assert.deepEqual(all.labels, all.inputIds);
  const cut = one(tok, CHAT, { maxLength: 30 });
  assert.deepEqual(cut.inputIds, full.inputIds.slice(0, 30));
  assert.deepEqual(cut.labels, full.labels.slice(0, 30));
  assert.throws(() => one(tok, CHAT, { maxLength: 1 }), /max length 1 is not an integer >= 2/);
});

test('text rows: BOS + text + EOS with loss on all tokens (tinyshakespeare via JSONL)', (t) => {
  const tok = load(t, 'hf_models', 'stories260K-hf');
  const src = fixture(t, 'datasets', 'tinyshakespeare.txt');
  if (!tok || !src) return;
  const paragraphs = readFileSync(src, 'utf8').split('\n\n').slice(0, 8);
  const path = join(dir, 'shakespeare.jsonl');
  writeFileSync(path, paragraphs.map((p) => JSON.stringify({ text: p })).join('\n'));
  const examples = loadDataset(path, tok, { maxLength: 4096 });
  assert.equal(examples.length, 8);
  examples.forEach((ex, i) => {
    assert.deepEqual(ex.inputIds, [...tok.encode(paragraphs[i] ?? ''), 2]);
    assert.deepEqual(ex.labels, ex.inputIds);
  });
  assert.deepEqual(one(tok, { text: 'Once upon a time' }).inputIds, [1, 403, 407, 261, 378, 2]);
});

/** Decoded text of each loss span, special tokens dropped, trimmed. */
const spanTexts = (tok: Tokenizer, ex: Example): string[] => runs(ex).map(([, ids]) => tok.decode(ids, { skipSpecialTokens: true }).trim());

test('shared alpaca and sharegpt rows: every loss span decodes to its answer', (t) => {
  const stories = load(t, 'hf_models', 'stories260K-hf');
  const llama = load(t, 'tokenizers', 'llama2-tiny-random');
  const alpacaPath = fixture(t, 'datasets', 'alpaca_en_demo.json');
  const chatPath = fixture(t, 'datasets', 'fastchat_dummy_conversation.json');
  if (!stories || !llama || !alpacaPath || !chatPath) return;
  const alpaca = readRows(alpacaPath).slice(0, 12);
  for (const tok of [stories, llama]) {
    tokenizeRows(alpaca, tok, { path: alpacaPath, maxLength: 4096 }).forEach((ex, i) => {
      assert.deepEqual(spanTexts(tok, ex), [String(alpaca[i]?.row['output']).trim()], `alpaca row ${i}`);
    });
  }
  const chats = readRows(chatPath).slice(0, 8);
  tokenizeRows(chats, llama, { path: chatPath, maxLength: 4096 }).forEach((ex, i) => {
    const turns = chats[i]?.row['conversations'] as Array<{ from: string; value: string }>;
    assert.deepEqual(spanTexts(llama, ex), turns.filter((m) => m.from === 'gpt').map((m) => m.value.trim()), `sharegpt row ${i}`);
  });
});

test('gsm8k question/answer rows train on the answer only', (t) => {
  const tok = load(t, 'tokenizers', 'phi-3-mini');
  const path = fixture(t, 'datasets', 'gsm8k_test.jsonl');
  if (!tok || !path) return;
  const rows = readRows(path).slice(0, 5);
  tokenizeRows(rows, tok, { path }).forEach((ex, i) => {
    assert.deepEqual(spanTexts(tok, ex), [String(rows[i]?.row['answer'])]);
  });
});

test('sharegpt tool calls: function_call is an assistant turn, observation a tool turn, tools open the transcript', (t) => {
  const tok = load(t, 'hf_models', 'stories260K-hf');
  const path = fixture(t, 'datasets', 'glaive_toolcall_en_demo.json');
  if (!tok || !path) return;
  const [first] = readRows(path);
  assert.ok(first);
  const turns = first.row['conversations'] as Array<{ from: string; value: string }>;
  assert.ok(turns.some((m) => m.from === 'observation'));
  const ex = one(tok, first.row, { maxLength: 8192 });
  assert.deepEqual(spanTexts(tok, ex), turns.filter((m) => m.from === 'gpt' || m.from === 'function_call').map((m) => m.value.trim()));
  const text = tok.decode(ex.inputIds, { skipSpecialTokens: true });
  assert.ok(text.startsWith('### Tools:\n[{"name":'), text.slice(0, 40));
  assert.equal(text.split('### Tool:\n').length - 1, turns.filter((m) => m.from === 'observation').length);
});
