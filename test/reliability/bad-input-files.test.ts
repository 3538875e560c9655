// Bad llama2.c checkpoints and tokenizers, and bad dataset files: each case is built from a
// temp copy of a real file and must end in the named typed error with a hint. Rows longer
// than max length are not an error: they keep their first maxLength tokens, consistently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, FormatError, IoError } from '../../src/errors.js';
import { convertLlama2c } from '../../src/io/llama2c-convert.js';
import { loadDataset } from '../../src/data/dataset.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { fixture } from '../helpers/data.js';
import { i32le, patchBytes, runCases, tempDir, truncateFile, u64le, type BadCase } from '../helpers/corrupt.js';

const ck = (d: string): string => join(d, 'model.bin');
const tk = (d: string): string => join(d, 'tok.bin');

const LLAMA2C: BadCase[] = [
  { name: 'empty checkpoint', build: (d) => writeFileSync(ck(d), ''), error: FormatError, message: /0 bytes, shorter than the 28-byte/ },
  { name: 'missing checkpoint', build: (d) => rmSync(ck(d)), error: IoError, message: /cannot open .*model.bin/ },
  { name: 'truncated header', build: (d) => truncateFile(ck(d), 20), error: FormatError, message: /shorter than the 28-byte/ },
  { name: 'truncated weights', build: (d) => truncateFile(ck(d), -4), error: FormatError, message: /file is truncated|implies \d+ bytes/ },
  { name: 'trailing bytes', build: (d) => appendFileSync(ck(d), Buffer.alloc(8)), error: FormatError, message: /implies \d+ bytes/ },
  { name: 'dim 2^30', build: (d) => patchBytes(ck(d), 0, i32le(1 << 30)), error: FormatError, message: /header field dim = 1073741824 is not in 1\.\./ },
  { name: 'negative n_layers', build: (d) => patchBytes(ck(d), 8, i32le(-5)), error: FormatError, message: /n_layers = -5/ },
  { name: 'n_layers 10^6 (absurd size)', build: (d) => patchBytes(ck(d), 8, i32le(1_000_000)), error: FormatError, message: /implies \d+ bytes/ },
  { name: 'n_heads not dividing dim', build: (d) => patchBytes(ck(d), 12, i32le(7)), error: FormatError, message: /not n_heads 7 times an even head size/ },
  { name: 'kv heads not dividing heads', build: (d) => patchBytes(ck(d), 16, i32le(3)), error: FormatError, message: /not a multiple of n_kv_heads 3/ },
  { name: 'version 2 (int8)', build: (d) => { patchBytes(ck(d), 0, u64le(0x616b3432n | (2n << 32n))); }, error: FormatError, message: /export version 2/ },
  { name: 'tokenizer empty', build: (d) => writeFileSync(tk(d), ''), error: FormatError, message: /too short for the max_token_length/ },
  { name: 'tokenizer max_token_length 0', build: (d) => patchBytes(tk(d), 0, i32le(0)), error: FormatError, message: /max_token_length 0/ },
  { name: 'tokenizer entry length 2^31-1', build: (d) => patchBytes(tk(d), 8, i32le(0x7fffffff)), error: FormatError, message: /entry 0 has byte length 2147483647/ },
  { name: 'tokenizer entry length negative', build: (d) => patchBytes(tk(d), 8, i32le(-1)), error: FormatError, message: /byte length -1/ },
  { name: 'tokenizer truncated mid-entry', build: (d) => truncateFile(tk(d), -3), error: FormatError, message: /cut off|byte length/ },
  { name: 'tokenizer invalid UTF-8 piece', build: (d) => patchBytes(tk(d), 12, Uint8Array.of(0xff)), error: FormatError, message: /entry 0 is not valid UTF-8/ },
  { name: 'tokenizer of another vocab size', build: (d) => truncateFile(tk(d), 4 + 300 * 9), error: FormatError, message: /entries but the checkpoint's vocab_size is 512|cut off/ },
];

test('llama2.c files: every malformed checkpoint or tokenizer is a typed error with a hint', (t) => {
  const bin = fixture(t, 'llama2c', 'stories260K.bin');
  const tok = fixture(t, 'llama2c', 'tok512.bin');
  if (bin === undefined || tok === undefined) return;
  const prepare = (d: string): void => {
    copyFileSync(bin, ck(d));
    copyFileSync(tok, tk(d));
  };
  t.diagnostic(`llama2.c cases: ${runCases(LLAMA2C, prepare, (d) => convertLlama2c(ck(d), tk(d)))}`);
});

const data = (d: string, ext = 'json'): string => join(d, `data.${ext}`);
const write = (ext: string, text: string | Buffer) => (d: string): void => writeFileSync(data(d, ext), text);

const DATASETS: (BadCase & { ext?: string; maxLength?: number })[] = [
  { name: 'empty .json', build: write('json', ''), error: FormatError, message: /empty dataset/ },
  { name: 'empty array', build: write('json', '[]'), error: FormatError, message: /empty dataset/ },
  { name: 'blank .jsonl', ext: 'jsonl', build: write('jsonl', '\n\n  \n'), error: FormatError, message: /empty dataset/ },
  { name: 'wrong extension', ext: 'csv', build: write('csv', 'a,b\n1,2\n'), error: FormatError, message: /unsupported dataset extension ".csv"/ },
  { name: 'missing file', ext: 'jsonl', build: () => undefined, error: IoError, message: /cannot read dataset/ },
  { name: 'truncated JSON array', build: write('json', '[{"text": "a"}, {"text": "b'), error: FormatError, message: /data.json:1: invalid JSON/ },
  { name: 'bad JSON on line 3', ext: 'jsonl', build: write('jsonl', '{"text": "a"}\n{"text": "b"}\n{"text": c}\n'), error: FormatError, message: /data.jsonl:3: invalid JSON/ },
  { name: 'row is an array', ext: 'jsonl', build: write('jsonl', '{"text": "a"}\n[1, 2]\n'), error: FormatError, message: /data.jsonl:2: line holds an array/ },
  { name: 'element is a string', build: write('json', '[\n{"text": "a"},\n"b"\n]'), error: FormatError, message: /data.json:3: element 1 is a string/ },
  { name: 'invalid UTF-8 on line 2', ext: 'jsonl', build: write('jsonl', Buffer.concat([Buffer.from('{"text": "a"}\n{"text": "'), Buffer.from([0xe2, 0x28, 0xa1]), Buffer.from('"}\n')])), error: FormatError, message: /data.jsonl:2: invalid UTF-8/ },
  { name: 'unknown format', ext: 'jsonl', build: write('jsonl', '{"foo": 1}\n'), error: FormatError, message: /unknown dataset format: fields "foo"/ },
  { name: 'text is a number', ext: 'jsonl', build: write('jsonl', '{"text": "a"}\n{"text": 5}\n'), error: FormatError, message: /data.jsonl:2: field "text" is number, expected a string/ },
  { name: 'alpaca row missing output', ext: 'jsonl', build: write('jsonl', '{"instruction": "a", "output": "b"}\n{"instruction": "c"}\n'), error: FormatError, message: /data.jsonl:2: .*"output"/ },
  { name: 'messages not a list', ext: 'jsonl', build: write('jsonl', '{"messages": "hi"}\n'), error: FormatError, message: /data.jsonl:1: .*messages/ },
  { name: 'unknown role', ext: 'jsonl', build: write('jsonl', '{"messages": [{"role": "wizard", "content": "hi"}]}\n'), error: FormatError, message: /data.jsonl:1: .*wizard/ },
  { name: 'no assistant turn', ext: 'jsonl', build: write('jsonl', '{"messages": [{"role": "user", "content": "hi"}]}\n'), error: FormatError, message: /no assistant turn/ },
  { name: 'max length 1', ext: 'jsonl', maxLength: 1, build: write('jsonl', '{"text": "a"}\n'), error: ConfigError, message: /max length 1 is not an integer >= 2/ },
];

test('dataset files: every malformed file is a typed error naming file:line', (t) => {
  const src = fixture(t, 'hf_models', 'stories260K-hf');
  if (src === undefined) return;
  const tokenizer = Tokenizer.fromDir(src);
  let failures = 0;
  for (const c of DATASETS) {
    const opts = c.maxLength === undefined ? {} : { maxLength: c.maxLength };
    try {
      runCases([c], () => undefined, (d) => loadDataset(data(d, c.ext ?? 'json'), tokenizer, opts));
    } catch (e) {
      failures++;
      t.diagnostic(e instanceof Error ? e.message : String(e));
    }
  }
  assert.equal(failures, 0);
  t.diagnostic(`dataset cases: ${DATASETS.length}`);
});

test('rows longer than max length keep their first maxLength tokens, labels aligned', (t) => {
  const src = fixture(t, 'hf_models', 'stories260K-hf');
  const alpaca = fixture(t, 'datasets', 'alpaca_en_demo.json');
  if (src === undefined || alpaca === undefined) return;
  const tokenizer = Tokenizer.fromDir(src);
  const { dir, cleanup } = tempDir('maxlen');
  t.after(cleanup);
  // The first 40 rows keep the test fast; they include rows far longer than 64 tokens.
  const path = join(dir, 'alpaca40.json');
  writeFileSync(path, JSON.stringify((JSON.parse(readFileSync(alpaca, 'utf8')) as unknown[]).slice(0, 40)));
  const full = loadDataset(path, tokenizer, { maxLength: 100_000 });
  const cut = loadDataset(path, tokenizer, { maxLength: 64 });
  assert.equal(cut.length, full.length);
  let truncated = 0;
  full.forEach((f, i) => {
    const c = cut[i];
    assert.ok(c !== undefined);
    assert.equal(c.inputIds.length, Math.min(64, f.inputIds.length));
    assert.deepEqual(c.inputIds, f.inputIds.slice(0, 64));
    assert.deepEqual(c.labels, f.labels.slice(0, 64));
    if (f.inputIds.length > 64) truncated++;
  });
  assert.ok(truncated > 0, 'the fixture has rows longer than 64 tokens');
  // Same input, same result: truncation is deterministic.
  assert.deepEqual(loadDataset(path, tokenizer, { maxLength: 64 }), cut);
});
