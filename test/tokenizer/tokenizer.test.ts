// Tokenizer against HF reference ids: the 46 ggml vocab test strings for gpt2 (byte-level
// BPE), phi-3-mini and llama2-tiny-random (SentencePiece BPE with byte fallback), decode
// round trips, special-token ids, streaming decode, and typed errors for bad inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoTokenizer, Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { ConfigError, FormatError } from '../../src/errors.js';
import { fixture } from '../helpers/data.js';

/** The 46 test strings: each followed by the separator line; the empty tail dropped. */
function ggmlStrings(path: string): string[] {
  const parts = readFileSync(path, 'utf8').split('\n__ggml_vocab_test__\n');
  if (parts.at(-1) === '') parts.pop();
  return parts;
}

/** One line of ids per test string, each id preceded by a space; empty line = no tokens. */
function refIds(path: string): number[][] {
  return readFileSync(path, 'utf8').split('\n').map((l) => (l.trim() === '' ? [] : l.trim().split(' ').map(Number)));
}

const PAIRS = [
  { dir: 'gpt2', out: 'gpt-2.out' },
  { dir: 'phi-3-mini', out: 'phi-3.out' },
  { dir: 'llama2-tiny-random', out: 'llama-spm.out' },
] as const;

for (const { dir, out } of PAIRS) {
  test(`${dir}: all 46 ggml vocab test strings encode to the HF reference ids, and decode back`, (t) => {
    const tokDir = fixture(t, 'tokenizers', dir);
    const inp = fixture(t, 'tokenizers', 'test_vectors', 'ggml-vocab-test.inp');
    const ref = fixture(t, 'tokenizers', 'test_vectors', out);
    if (!tokDir || !inp || !ref) return;
    const tok = Tokenizer.fromDir(tokDir);
    const strings = ggmlStrings(inp);
    const ids = refIds(ref);
    assert.equal(strings.length, 46);
    for (const [i, s] of strings.entries()) {
      const got = tok.encode(s, { addSpecialTokens: false });
      assert.deepEqual(got, ids[i], `string ${i} ${JSON.stringify(s)}`);
      assert.equal(tok.decode(got, { cleanUpTokenizationSpaces: false }), s, `round trip of string ${i}`);
    }
  });
}

test('gpt2: special tokens, no truncation despite truncation.max_length = 50, cleanup from config', (t) => {
  const dir = fixture(t, 'tokenizers', 'gpt2');
  if (!dir) return;
  const tok = Tokenizer.fromDir(dir);
  assert.equal(tok.bosTokenId, 50256);
  assert.equal(tok.eosTokenId, 50256);
  assert.deepEqual(tok.eosTokenIds, [50256]);
  assert.equal(tok.padTokenId, undefined);
  assert.equal(tok.vocabSize, 50257);
  assert.equal(tok.chatTemplate, undefined);
  assert.equal(tok.encode(' word'.repeat(200)).length, 200); // one " word" token each: no cut at 50
  assert.deepEqual(tok.encode('Hello world'), [15496, 995]); // no BOS added
  assert.equal(tok.idToToken(995), '\u0120world');
  assert.equal(tok.tokenToId('\u0120world'), 995);
  // tokenizer_config says clean_up_tokenization_spaces: true, as transformers applies it.
  const ids = tok.encode('a , b', { addSpecialTokens: false });
  assert.equal(tok.decode(ids), 'a, b');
  assert.equal(tok.decode(ids, { cleanUpTokenizationSpaces: false }), 'a , b');
});

test('llama2-tiny-random: BOS added by the post-processor, special ids, skipSpecialTokens', (t) => {
  const dir = fixture(t, 'tokenizers', 'llama2-tiny-random');
  if (!dir) return;
  const tok = Tokenizer.fromDir(dir);
  assert.equal(tok.bosTokenId, 1);
  assert.equal(tok.eosTokenId, 2);
  assert.equal(tok.padTokenId, 0); // pad_token "<unk>"
  assert.equal(tok.vocabSize, 32000);
  const ids = tok.encode('Hello world');
  assert.deepEqual(ids, [1, 15043, 3186]);
  assert.equal(tok.decode([...ids, 2]), '<s> Hello world</s>');
  assert.equal(tok.decode([...ids, 2], { skipSpecialTokens: true }), 'Hello world');
  assert.equal(tok.decode([]), '');
  assert.equal(tok.decode([15043, 32000, 40000, 3186]), 'Hello world'); // ids past the vocab are dropped
});

test('phi-3-mini: chat special tokens and no BOS (add_bos_token false)', (t) => {
  const dir = fixture(t, 'tokenizers', 'phi-3-mini');
  if (!dir) return;
  const tok = Tokenizer.fromDir(dir);
  assert.equal(tok.bosTokenId, 1);
  assert.equal(tok.eosTokenId, 32000);
  assert.equal(tok.tokenToId('<|end|>'), 32007);
  assert.deepEqual(tok.encode('<|end|>'), [32007]); // added tokens match before the model runs
  assert.equal(tok.vocabSize, 32011);
});

test('stories260K-hf: "Once upon a time" with special tokens -> [1, 403, 407, 261, 378]', async (t) => {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  if (!dir) return;
  const tok = await AutoTokenizer.fromPretrained(dir);
  assert.deepEqual(tok.encode('Once upon a time'), [1, 403, 407, 261, 378]);
  assert.deepEqual(tok.encode(''), [1]);
  assert.equal(tok.vocabSize, 512);
});

test('streaming decode concatenates to decode(all) on the golden generations', (t) => {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  const golden = fixture(t, 'llama2c', 'golden.json');
  if (!dir || !golden) return;
  const tok = Tokenizer.fromDir(dir);
  const g = JSON.parse(readFileSync(golden, 'utf8')) as { cases: { generated_token_ids: number[]; expected_text: string }[] };
  assert.equal(g.cases.length, 4);
  for (const c of g.cases) {
    const stream = tok.decodeStream();
    let text = '';
    for (const id of c.generated_token_ids) text += stream.push(id);
    text += stream.flush();
    assert.equal(text, tok.decode(c.generated_token_ids));
    assert.equal(text, c.expected_text); // llama2.c's own output, byte for byte
    // With BOS in front (as a model's input holds it), skipping special tokens.
    const s2 = tok.decodeStream({ skipSpecialTokens: true });
    let text2 = s2.push(1);
    for (const id of c.generated_token_ids) text2 += s2.push(id);
    assert.equal(text2 + s2.flush(), c.expected_text);
  }
});

test('streaming decode holds back split UTF-8 (byte fallback) and cleanup-sensitive spaces', (t) => {
  const phi = fixture(t, 'tokenizers', 'phi-3-mini');
  const gpt2 = fixture(t, 'tokenizers', 'gpt2');
  const inp = fixture(t, 'tokenizers', 'test_vectors', 'ggml-vocab-test.inp');
  if (!phi || !gpt2 || !inp) return;
  for (const tok of [Tokenizer.fromDir(phi), Tokenizer.fromDir(gpt2)]) {
    for (const s of [...ggmlStrings(inp), 'a , b . c \'s d n\'t', '🦙 llama 🦙🦙 ☃ 你好']) {
      const ids = tok.encode(s);
      const stream = tok.decodeStream();
      let text = '';
      for (const id of ids) {
        const piece = stream.push(id);
        assert.ok(!piece.includes('\uFFFD') || s.includes('\uFFFD'), `no partial character emitted for ${JSON.stringify(s)}`);
        text += piece;
      }
      assert.equal(text + stream.flush(), tok.decode(ids), JSON.stringify(s));
    }
  }
  // A 4-byte emoji is 4 byte-fallback tokens in phi-3's vocab: nothing until the last one.
  const tok = Tokenizer.fromDir(phi);
  const ids = tok.encode('🦙', { addSpecialTokens: false });
  const stream = tok.decodeStream();
  const pieces = ids.map((id) => stream.push(id));
  assert.deepEqual(pieces.slice(-1), [' 🦙'.trimStart()]);
  assert.ok(pieces.slice(0, -1).every((p) => p === ''));
});

test('errors: missing tokenizer.json, bad JSON, missing model, no chat template', (t) => {
  const gpt2 = fixture(t, 'tokenizers', 'gpt2');
  if (!gpt2) return;
  const dir = mkdtempSync(join(tmpdir(), 'ftune-tok-'));
  assert.throws(() => Tokenizer.fromDir(dir), (e: unknown) => e instanceof FormatError && /no tokenizer\.json/.test(e.message) && /hint:/.test(e.message));
  writeFileSync(join(dir, 'tokenizer.json'), '{"model": ');
  assert.throws(() => Tokenizer.fromDir(dir), (e: unknown) => e instanceof FormatError && /tokenizer\.json: not valid JSON/.test(e.message));
  writeFileSync(join(dir, 'tokenizer.json'), '{"version": "1.0"}');
  assert.throws(() => Tokenizer.fromDir(dir), (e: unknown) => e instanceof FormatError && /field "model"/.test(e.message));
  const tok = Tokenizer.fromDir(gpt2);
  assert.throws(() => tok.applyChatTemplate([{ role: 'user', content: 'hi' }]),
    (e: unknown) => e instanceof ConfigError && /no chat template/.test(e.message) && /hint:/.test(e.message));
});
