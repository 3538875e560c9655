// Bad tokenizer and adapter inputs: malformed tokenizer.json / tokenizer_config.json, a
// tokenizer larger than the model's embedding, and PEFT adapter directories that are
// corrupt or were made for another base model. Each case is a typed error with a hint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError, IoError, ConfigError, ShapeError } from '../../src/errors.js';
import { AutoModelForCausalLM } from '../../src/models/auto.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { PeftModel } from '../../src/peft/peft-model.js';
import { fixture } from '../helpers/data.js';
import { copyDir, editJson, editSafetensorsHeader, runCases, tempDir, truncateFile, type BadCase } from '../helpers/corrupt.js';
import { randomQwen2 } from '../peft/helpers.js';

const tok = (d: string): string => join(d, 'tokenizer.json');
const tcfg = (d: string): string => join(d, 'tokenizer_config.json');
const BAD_UTF8 = Buffer.concat([Buffer.from('{"model": {"type": "BPE", "vocab": {"'), Buffer.from([0xf0, 0x28, 0x8c, 0x28]), Buffer.from('": 0}}}')]);

/** Loads the tokenizer and uses it once (encode, decode, chat template when it has one). */
function useTokenizer(dir: string): void {
  const t = Tokenizer.fromDir(dir);
  const ids = t.encode('Once upon a time, Lily ate ümlauts 🍎.');
  t.decode(ids);
  if (t.chatTemplate !== undefined) t.applyChatTemplate([{ role: 'user', content: 'hi' }]);
}

const TOKENIZER_JSON: BadCase[] = [
  { name: 'missing tokenizer.json', build: (d) => rmSync(tok(d)), error: FormatError, message: /no tokenizer.json/ },
  { name: 'empty', build: (d) => writeFileSync(tok(d), ''), error: FormatError, message: /not valid JSON/ },
  { name: 'truncated', build: (d) => truncateFile(tok(d), 5000), error: FormatError, message: /not valid JSON/ },
  { name: 'invalid UTF-8', build: (d) => writeFileSync(tok(d), BAD_UTF8), error: FormatError, message: /not valid UTF-8/ },
  { name: 'top-level array', build: (d) => writeFileSync(tok(d), '[]'), error: FormatError, message: /expected a JSON object/ },
  { name: 'no model', build: (d) => editJson(tok(d), (j) => { delete j['model']; }), error: FormatError, message: /field "model" is missing/ },
  { name: 'vocab is a string', build: (d) => editJson(tok(d), (j) => { (j['model'] as Record<string, unknown>)['vocab'] = 'abc'; }), error: FormatError, message: /model.vocab/ },
  { name: 'added_tokens is an object', build: (d) => editJson(tok(d), (j) => { j['added_tokens'] = { a: 1 }; }), error: FormatError, message: /"added_tokens" is not an array/ },
  { name: 'unknown model type', build: (d) => editJson(tok(d), (j) => { (j['model'] as Record<string, unknown>)['type'] = 'Magic'; }), error: FormatError, message: /"model.type" is "Magic"/ },
  { name: 'merges is a number', build: (d) => editJson(tok(d), (j) => { (j['model'] as Record<string, unknown>)['merges'] = 7; }), error: FormatError, message: /rejected the file|merges/ },
  { name: 'unknown normalizer', build: (d) => editJson(tok(d), (j) => { j['normalizer'] = { type: 'Shout' }; }), error: FormatError, message: /rejected the file/ },
  { name: 'unknown decoder', build: (d) => editJson(tok(d), (j) => { j['decoder'] = { type: 'Backwards' }; }), error: FormatError, message: /rejected the file/ },
];

const TOKENIZER_CONFIG: BadCase[] = [
  { name: 'empty', build: (d) => writeFileSync(tcfg(d), ''), error: FormatError, message: /tokenizer_config.json: not valid JSON/ },
  { name: 'truncated', build: (d) => truncateFile(tcfg(d), 40), error: FormatError, message: /not valid JSON/ },
  { name: 'invalid UTF-8', build: (d) => writeFileSync(tcfg(d), Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), error: FormatError, message: /not valid UTF-8/ },
  { name: 'top-level string', build: (d) => writeFileSync(tcfg(d), '"hello"'), error: FormatError, message: /expected a JSON object/ },
  { name: 'eos_token is a number', build: (d) => editJson(tcfg(d), (j) => { j['eos_token'] = 2; }), error: FormatError, message: /field "eos_token" is 2/ },
  { name: 'chat_template is a number', build: (d) => editJson(tcfg(d), (j) => { j['chat_template'] = 42; }), error: FormatError, message: /"chat_template" is neither a string/ },
  { name: 'chat_template does not parse', build: (d) => editJson(tcfg(d), (j) => { j['chat_template'] = '{% for m in messages %}{{ m.content }'; }), error: FormatError, message: /chat template does not parse/ },
  { name: 'chat_template raises', build: (d) => editJson(tcfg(d), (j) => { j['chat_template'] = '{{ raise_exception("roles must alternate") }}'; }), error: ConfigError, message: /roles must alternate/ },
  { name: 'special_tokens_map.json not JSON', build: (d) => { editJson(tcfg(d), (j) => { delete j['bos_token']; }); writeFileSync(join(d, 'special_tokens_map.json'), '{"bos'); }, error: FormatError, message: /special_tokens_map.json: not valid JSON/ },
  { name: 'unreadable (a directory)', build: (d) => { rmSync(tcfg(d)); mkdirSync(tcfg(d)); }, error: IoError, message: /cannot read .*tokenizer_config.json/ },
];

test('tokenizer.json: every malformed file is a typed error with a hint', (t) => {
  const src = fixture(t, 'hf_models', 'stories260K-hf');
  if (src === undefined) return;
  t.diagnostic(`tokenizer.json cases: ${runCases(TOKENIZER_JSON, (d) => copyDir(src, d), useTokenizer)}`);
});

test('tokenizer_config.json: every malformed file is a typed error with a hint', (t) => {
  const src = fixture(t, 'hf_models', 'stories260K-hf');
  if (src === undefined) return;
  t.diagnostic(`tokenizer_config.json cases: ${runCases(TOKENIZER_CONFIG, (d) => copyDir(src, d), useTokenizer)}`);
});

test('a tokenizer larger than the embedding fails at first use, naming the id and vocab_size', (t) => {
  const src = fixture(t, 'hf_models', 'stories260K-hf');
  if (src === undefined) return;
  const { dir, cleanup } = tempDir('vocab');
  try {
    copyDir(src, dir);
    editJson(tok(dir), (j) => {
      (j['added_tokens'] as unknown[]).push({ id: 600, content: '<extra_600>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    });
    const tokenizer = Tokenizer.fromDir(dir);
    const model = AutoModelForCausalLM.fromPretrained(dir);
    assert.equal(tokenizer.vocabSize, 601);
    assert.equal(model.config.vocabSize, 512);
    const ids = tokenizer.encode('Lily <extra_600>');
    assert.ok(ids.includes(600));
    // generate checks the prompt; a forward pass (training, eval) fails in the embedding.
    const viaGenerate: BadCase = { name: 'generate with id 600 > vocab_size 512', build: () => undefined, error: ConfigError, message: /token id 600 is outside the vocabulary \(0..511\)/ };
    const viaForward: BadCase = { name: 'forward with id 600 > vocab_size 512', build: () => undefined, error: ShapeError, message: /token id 600 at position \d+ is outside the model's vocabulary \[0, 512\)/ };
    runCases([viaGenerate], () => undefined, () => model.generate(ids, { maxNewTokens: 1 }));
    const cache = model.newCache(1, ids.length);
    try {
      runCases([viaForward], () => undefined, () => model.forward(Int32Array.from(ids), 1, cache));
    } finally {
      cache.release();
    }
    // Ids the embedding holds still work on the same model.
    assert.equal(model.generate(tokenizer.encode('Lily'), { maxNewTokens: 2 }).length, tokenizer.encode('Lily').length + 2);
  } finally {
    cleanup();
  }
});

const acfg = (d: string): string => join(d, 'adapter', 'adapter_config.json');
const aweights = (d: string): string => join(d, 'adapter', 'adapter_model.safetensors');
const LORA_A = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight';

test('PEFT adapter directories: corrupt files and adapters for another base are typed errors', (t) => {
  const src = fixture(t, 'hf_models', 'stories260K-hf');
  if (src === undefined) return;
  const { dir: root, cleanup } = tempDir('adapters');
  try {
    const base = AutoModelForCausalLM.fromPretrained(src);
    new PeftModel(base, { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj'] }).savePretrained(join(root, 'good'));
    // An adapter trained on another base: a Qwen2-style model with hidden size 48 and 2 layers.
    new PeftModel(randomQwen2(3), { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj'] }).savePretrained(join(root, 'qwen'));
    const cases: BadCase[] = [
      { name: 'missing adapter_config.json', build: (d) => rmSync(acfg(d)), error: FormatError, message: /adapter_config.json is missing/ },
      { name: 'missing weights', build: (d) => rmSync(aweights(d)), error: FormatError, message: /adapter_model.safetensors is missing/ },
      { name: 'config not JSON', build: (d) => truncateFile(acfg(d), 30), error: FormatError, message: /invalid JSON/ },
      { name: 'config invalid UTF-8', build: (d) => writeFileSync(acfg(d), Buffer.from([0x7b, 0xc0, 0x80, 0x7d])), error: FormatError, message: /not valid UTF-8/ },
      { name: 'peft_type IA3', build: (d) => editJson(acfg(d), (j) => { j['peft_type'] = 'IA3'; }), error: FormatError, message: /peft_type "IA3" is not supported/ },
      { name: 'r is a string', build: (d) => editJson(acfg(d), (j) => { j['r'] = 'eight'; }), error: FormatError, message: /adapter_config.json: .*r/ },
      { name: 'r is negative', build: (d) => editJson(acfg(d), (j) => { j['r'] = -4; }), error: FormatError, message: /adapter_config.json: .*r/ },
      { name: 'r disagrees with the weights', build: (d) => editJson(acfg(d), (j) => { j['r'] = 8; }), error: FormatError, message: /has shape \[4, 64\], this base model needs \[8, 64\]/ },
      { name: 'target_modules missing', build: (d) => editJson(acfg(d), (j) => { delete j['target_modules']; }), error: FormatError, message: /target_modules is missing/ },
      { name: 'target_modules match nothing', build: (d) => editJson(acfg(d), (j) => { j['target_modules'] = ['c_attn']; }), error: FormatError, message: /adapter_config.json: / },
      { name: 'use_dora', build: (d) => editJson(acfg(d), (j) => { j['use_dora'] = true; }), error: FormatError, message: /use_dora = true is not supported/ },
      { name: 'weights truncated', build: (d) => truncateFile(aweights(d), -10), error: FormatError, message: /data truncated/ },
      { name: 'weights of an integer dtype', build: (d) => editSafetensorsHeader(aweights(d), (h) => { (h[LORA_A] as Record<string, unknown>)['dtype'] = 'I32'; }), error: FormatError, message: /dtype I32/ },
      { name: 'a key for a layer the base lacks', build: (d) => editSafetensorsHeader(aweights(d), (h) => { h[LORA_A.replace('layers.0', 'layers.9')] = h[LORA_A]; delete h[LORA_A]; }), error: FormatError, message: /does not belong to any adapted module/ },
      { name: 'adapter made for another base (hidden 48)', build: (d) => { rmSync(join(d, 'adapter'), { recursive: true }); copyDir(join(root, 'qwen'), join(d, 'adapter')); }, error: FormatError, message: /this base model needs \[4, 64\]|LoRA tensors are missing/ },
    ];
    const prepare = (d: string): void => void copyDir(join(root, 'good'), join(d, 'adapter'));
    const fresh = AutoModelForCausalLM.fromPretrained(src);
    t.diagnostic(`adapter cases: ${runCases(cases, prepare, (d) => PeftModel.fromPretrained(fresh, join(d, 'adapter')))}`);
    // Every failed load left the base model as it was: the good adapter still loads on it.
    PeftModel.fromPretrained(fresh, join(root, 'good'));
  } finally {
    cleanup();
  }
});
