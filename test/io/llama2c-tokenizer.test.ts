// llama2.c vocabularies: the reader, run.c's encoder (llama2cEncode) on llama2.c's own test
// vectors, and the converted tokenizer.json loaded with Tokenizer encoding exactly like it
// (golden vectors, the 46 ggml strings vs HF's Llama 2 ids, Tiny Shakespeare lines).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  llama2cEncode, llama2cMerges, llama2cTokenizerConfig, llama2cTokenizerToHf, readLlama2cTokenizer,
} from '../../src/io/llama2c-tokenizer.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { FormatError } from '../../src/errors.js';
import { fixture } from '../helpers/data.js';

interface Golden {
  tok512_test_vectors: { cases: { text: string; ids: number[] }[] };
  tokenizer_bin_test_vectors: { cases: { text: string; ids: number[] }[] };
  cases: { generated_token_ids: number[]; expected_text: string }[];
}

function golden(path: string): Golden {
  return JSON.parse(readFileSync(path, 'utf8')) as Golden;
}

test('tok512.bin: 512 pieces, max length 7, control and byte pieces where README says', (t) => {
  const path = fixture(t, 'llama2c', 'tok512.bin');
  if (!path) return;
  const tok = readLlama2cTokenizer(path, 512);
  assert.equal(tok.maxTokenLength, 7);
  assert.equal(tok.pieces.length, 512);
  assert.deepEqual(tok.pieces.slice(0, 3).map((p) => p.piece), ['<unk>', '\n<s>\n', '\n</s>\n']);
  assert.equal(tok.pieces[3 + 0x41]?.piece, '<0x41>');
  assert.equal(tok.pieces[259]?.piece, ' t');
  assert.deepEqual(tok.pieces[259]?.bytes, Uint8Array.of(0x20, 0x74));
  assert.equal(tok.pieces[260]?.score, -1);
  assert.throws(() => readLlama2cTokenizer(path, 32000), (e: unknown) => e instanceof FormatError && /512 entries but the checkpoint's vocab_size is 32000/.test(e.message));
});

test('malformed tokenizer files are FormatErrors', (t) => {
  const path = fixture(t, 'llama2c', 'tok512.bin');
  if (!path) return;
  const good = readFileSync(path);
  const dir = mkdtempSync(join(tmpdir(), 'ftune-l2ct-'));
  const bad = (bytes: Uint8Array, re: RegExp): void => {
    const file = join(dir, 'bad.bin');
    writeFileSync(file, bytes);
    assert.throws(() => readLlama2cTokenizer(file), (e: unknown) => e instanceof FormatError && e.message.includes(file) && re.test(e.message), re.source);
  };
  bad(good.subarray(0, good.length - 1), /entry 511 has byte length/);
  bad(good.subarray(0, 2), /too short/);
  const zero = Buffer.from(good);
  zero.writeUInt32LE(0, 0);
  bad(zero, /max_token_length 0/);
  bad(good.subarray(0, 4 + 8 + 5), /entries; a llama2.c vocabulary holds/);
});

test('tok512: run.c encoder and the converted tokenizer.json reproduce tok512_test_vectors and golden text', (t) => {
  const path = fixture(t, 'llama2c', 'tok512.bin');
  const g = fixture(t, 'llama2c', 'golden.json');
  const shakespeare = fixture(t, 'datasets', 'tinyshakespeare.txt');
  if (!path || !g || !shakespeare) return;
  const l2c = readLlama2cTokenizer(path);
  const tok = new Tokenizer(llama2cTokenizerToHf(l2c), llama2cTokenizerConfig(512));
  const gold = golden(g);
  assert.equal(gold.tok512_test_vectors.cases.length, 2);
  for (const c of gold.tok512_test_vectors.cases) {
    assert.deepEqual(llama2cEncode(l2c, c.text), c.ids, c.text);
    assert.deepEqual(tok.encode(c.text), c.ids, c.text);
  }
  for (const c of gold.cases) assert.equal(tok.decode(c.generated_token_ids), c.expected_text);
  // Parity on real text: 2,000 Tiny Shakespeare lines (all 65 characters occur).
  const lines = readFileSync(shakespeare, 'utf8').split('\n').slice(0, 2000);
  for (const line of lines) assert.deepEqual(tok.encode(line), llama2cEncode(l2c, line), JSON.stringify(line));
});

test('tokenizer.bin (Llama 2): test vectors, the 46 ggml strings as HF encodes them, merges as HF converts them', (t) => {
  const path = fixture(t, 'llama2c', 'tokenizer.bin');
  const g = fixture(t, 'llama2c', 'golden.json');
  const inp = fixture(t, 'tokenizers', 'test_vectors', 'ggml-vocab-test.inp');
  const out = fixture(t, 'tokenizers', 'test_vectors', 'llama-spm.out');
  const hfRef = fixture(t, 'tokenizers', 'llama2-tiny-random', 'tokenizer.json');
  if (!path || !g || !inp || !out || !hfRef) return;
  const l2c = readLlama2cTokenizer(path, 32000);
  assert.equal(l2c.maxTokenLength, 27);
  const json = llama2cTokenizerToHf(l2c);
  const tok = new Tokenizer(json, llama2cTokenizerConfig(4096));
  const cases = golden(g).tokenizer_bin_test_vectors.cases;
  assert.equal(cases.length, 5);
  for (const c of cases) {
    assert.deepEqual(llama2cEncode(l2c, c.text), c.ids, c.text);
    assert.deepEqual(tok.encode(c.text), c.ids, c.text);
  }
  const strings = readFileSync(inp, 'utf8').split('\n__ggml_vocab_test__\n').slice(0, 46);
  const ids = readFileSync(out, 'utf8').split('\n').map((l) => (l.trim() === '' ? [] : l.trim().split(' ').map(Number)));
  for (const [i, s] of strings.entries()) {
    assert.deepEqual(tok.encode(s, { addSpecialTokens: false }), ids[i], `ggml string ${i}`);
    assert.deepEqual(llama2cEncode(l2c, s, { bos: false }), ids[i], `ggml string ${i} (run.c encoder)`);
  }
  // HF's own Llama 2 tokenizer.json: same vocab (except its known defect at 31353, "" for
  // U+2028) and the same set of merges; order differs only among equal-score merges.
  const ref = JSON.parse(readFileSync(hfRef, 'utf8')) as { model: { vocab: Record<string, number>; merges: [string, string][] } };
  const ours = llama2cMerges(l2c).map(([a, b]) => `${a} ${b}`);
  const theirs = ref.model.merges.map(([a, b]) => `${a} ${b}`);
  assert.equal(ours.length, 61249);
  assert.deepEqual([...ours].sort(), [...theirs].sort());
  const differing = Object.entries(ref.model.vocab).filter(([k, v]) => tok.tokenToId(k) !== v).map(([, v]) => v);
  assert.deepEqual(differing, [31353]);
  assert.equal(tok.idToToken(31353), '\u2028');
});
