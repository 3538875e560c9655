// Dataset files and row formats: readRows line numbers, format detection on the shared
// datasets, and every malformed case failing with a FormatError that names file:line.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectFormat, readRows, tokenizeRows, type DataFormat } from '../../src/data/index.js';
import { FormatError } from '../../src/errors.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { fixture } from '../helpers/data.js';

const dir = mkdtempSync(join(tmpdir(), 'ftune-data-read-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** Assert `fn` throws a FormatError whose message starts with `${path}:${line}:` and matches `re`. */
function throwsAt(fn: () => unknown, path: string, line: number | null, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FormatError, `expected FormatError, got ${String(e)}`);
    const where = line === null ? `${path}:` : `${path}:${line}:`;
    assert.ok(e.message.startsWith(where), `message should start with ${where}: ${e.message}`);
    assert.match(e.message, re);
    assert.match(e.message, /\nhint: \S/);
    return true;
  });
}

test('a .json array gives each element the line it starts on', () => {
  const path = write('lines.json', '[\n  {"text": "a"},\n\n  {"text": "b",\n   "x": "[,{"},{"text": "c"}\n]\n');
  assert.deepEqual(readRows(path).map((r) => r.line), [2, 4, 5]);
  assert.deepEqual(readRows(path).map((r) => r.row['text']), ['a', 'b', 'c']);
});

test('a .jsonl file skips blank lines and keeps line numbers; CRLF and a BOM are accepted', () => {
  const path = write('lines.jsonl', '\uFEFF{"text": "a"}\r\n\r\n{"text": "b"}\r\n');
  assert.deepEqual(readRows(path).map((r) => [r.line, r.row['text']]), [[1, 'a'], [3, 'b']]);
  const jsonLinesInJson = write('lines-in.json', '{"text": "a"}\n{"text": "b"}\n');
  assert.equal(readRows(jsonLinesInJson).length, 2);
});

test('the shared datasets are detected: alpaca, sharegpt, question/answer as prompt-completion', (t) => {
  const cases: Array<[string, DataFormat, number, number[]]> = [
    ['alpaca_en_demo.json', 'alpaca', 999, [2, 7, 12]],
    ['fastchat_dummy_conversation.json', 'sharegpt', 500, [2, 23, 36]],
    ['glaive_toolcall_en_demo.json', 'sharegpt', 300, [2, 39, 84]],
    ['gsm8k_test.jsonl', 'prompt-completion', 1319, [1, 2, 3]],
  ];
  for (const [name, format, n, lines] of cases) {
    const path = fixture(t, 'datasets', name);
    if (!path) return;
    const rows = readRows(path);
    assert.equal(rows.length, n, name);
    assert.deepEqual(rows.slice(0, 3).map((r) => r.line), lines, name);
    assert.equal(detectFormat(rows, path), format, name);
  }
});

test('tinyshakespeare paragraphs written as {"text"} JSONL are detected as text', (t) => {
  const src = fixture(t, 'datasets', 'tinyshakespeare.txt');
  if (!src) return;
  const paragraphs = readFileSync(src, 'utf8').split('\n\n').slice(0, 20);
  const path = write('shakespeare.jsonl', paragraphs.map((p) => JSON.stringify({ text: p })).join('\n'));
  const rows = readRows(path);
  assert.equal(rows.length, 20);
  assert.equal(detectFormat(rows, path), 'text');
  assert.equal(rows[0]?.row['text'], 'First Citizen:\nBefore we proceed any further, hear me speak.');
});

test('messages rows are detected; text next to instruction/output is alpaca (tatsu-lab/alpaca)', () => {
  const m = write('m.jsonl', '{"messages": [{"role": "user", "content": "hi"}]}\n');
  assert.equal(detectFormat(readRows(m), m), 'messages');
  const a = write('a.jsonl', '{"instruction": "i", "input": "", "output": "o", "text": "rendered"}\n');
  assert.equal(detectFormat(readRows(a), a), 'alpaca');
});

test('unknown and ambiguous formats list the fields found and the formats', () => {
  const u = write('u.jsonl', '{"foo": 1, "bar": 2}\n');
  throwsAt(() => detectFormat(readRows(u), u), u, 1, /unknown dataset format: fields "foo", "bar"; the formats are text \(text\), prompt-completion \(prompt\+completion or question\+answer\), alpaca/);
  const a = write('amb.jsonl', '\n{"messages": [], "conversations": []}\n');
  throwsAt(() => detectFormat(readRows(a), a), a, 2, /ambiguous dataset format: fields "messages", "conversations" match messages and sharegpt[\s\S]*--format/);
});

test('file-level errors: bad JSON, bad UTF-8, empty, non-object rows, extension', () => {
  const jl = write('bad.jsonl', '{"text": "a"}\n{"text": "b"\n');
  throwsAt(() => readRows(jl), jl, 2, /invalid JSON on line 2/);
  const js = write('bad.json', '[\n {"text": "a"},\n {"text": "b",}\n]');
  throwsAt(() => readRows(js), js, 3, /invalid JSON/);
  const utf = write('bad-utf8.jsonl', new Uint8Array([...Buffer.from('{"text": "ok"}\n{"text": "'), 0xc3, 0x28, ...Buffer.from('"}\n')]));
  throwsAt(() => readRows(utf), utf, 2, /invalid UTF-8/);
  const empty = write('empty.jsonl', '\n\n');
  throwsAt(() => readRows(empty), empty, null, /empty dataset/);
  const emptyArr = write('empty.json', '[]');
  throwsAt(() => readRows(emptyArr), emptyArr, null, /empty dataset/);
  const notObj = write('notobj.jsonl', '{"text": "a"}\n["text"]\n');
  throwsAt(() => readRows(notObj), notObj, 2, /line holds an array, expected an object/);
  const notObjJson = write('notobj.json', '[\n {"text": "a"},\n 5\n]');
  throwsAt(() => readRows(notObjJson), notObjJson, 3, /element 1 is a number/);
  const str = write('str.json', '"just a string"');
  throwsAt(() => readRows(str), str, 1, /line holds a string, expected an object/);
  const csv = write('data.csv', 'text\nhello\n');
  throwsAt(() => readRows(csv), csv, null, /unsupported dataset extension "\.csv"/);
});

test('row errors name file:line and the field', (t) => {
  const tokPath = fixture(t, 'hf_models', 'stories260K-hf');
  if (!tokPath) return;
  const tok = Tokenizer.fromDir(tokPath);
  const cases: Array<[string, DataFormat | undefined, number, RegExp]> = [
    ['{"text": "a"}\n{"text": 5}\n', undefined, 2, /field "text" is number, expected a string/],
    ['{"text": "a"}\n{"txt": "b"}\n', undefined, 2, /missing field "text"/],
    ['{"text": "a"}\n\n{"text": ""}\n', undefined, 3, /field "text" is empty/],
    ['{"instruction": "i", "output": "o"}\n{"instruction": "i"}\n', undefined, 2, /missing field "output"/],
    ['{"instruction": "i", "output": "o", "input": 3}\n', undefined, 1, /field "input" is number/],
    ['{"instruction": "i", "output": "o", "history": [["q"]]}\n', undefined, 1, /field "history" is not a list of \[instruction, response\]/],
    ['{"prompt": "p", "completion": null}\n', undefined, 1, /field "completion" is null, expected a string/],
    ['{"question": "q", "answer": ["a"]}\n', undefined, 1, /field "answer" is array/],
    ['{"messages": []}\n', undefined, 1, /field "messages" is an empty conversation/],
    ['{"messages": {"role": "user"}}\n', undefined, 1, /field "messages" is object, expected a list/],
    ['{"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}\n', undefined, 1, /messages\[1\]\.role "bot" is unknown[\s\S]*hint: roles are system, user, assistant, tool/],
    ['{"messages": [{"role": "user", "content": 1}]}\n', undefined, 1, /messages\[0\]\.content is number/],
    ['{"messages": [{"role": "user", "content": "only a question"}]}\n', undefined, 1, /no assistant turn[\s\S]*--train-on-prompt/],
    ['{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tools": "[not json"}\n', undefined, 1, /field "tools" is a string but not valid JSON/],
    ['{"conversations": []}\n', undefined, 1, /field "conversations" is an empty conversation/],
    ['{"conversations": [{"from": "human", "value": "a"}, {"from": "robot", "value": "b"}]}\n', undefined, 1, /conversations\[1\]\.from "robot" is unknown/],
    ['{"conversations": [{"from": "human", "text": "a"}]}\n', undefined, 1, /conversations\[0\]\.value is undefined/],
    ['{"text": "a"}\n', 'alpaca', 1, /missing field "instruction"/],
  ];
  cases.forEach(([content, format, line, re], i) => {
    const path = write(`row-${i}.jsonl`, content);
    throwsAt(() => tokenizeRows(readRows(path), tok, { path, ...(format ? { format } : {}) }), path, line, re);
  });
});

test('a conversation the chat template rejects is a FormatError at its line', (t) => {
  const tokPath = fixture(t, 'tokenizers', 'llama2-tiny-random');
  if (!tokPath) return;
  const tok = Tokenizer.fromDir(tokPath);
  const path = write('reject.jsonl', [
    '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}',
    '{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}]}',
  ].join('\n'));
  throwsAt(() => tokenizeRows(readRows(path), tok, { path }), path, 2, /the chat template rejected this conversation: Conversation roles must alternate/);
});
