// The demo's parts and `ftune demo --quick` end to end: the generated language and task
// are deterministic and disjoint, the WordPiece tokenizer round-trips through the normal
// loading path, the base model is cached, and the demo prints the table and the
// before/after generations with no network and no fixtures.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildBaseModel, QUICK_BASE } from '../../src/demo/base-model.js';
import { instructionTask, pretrainingTexts, WORDS } from '../../src/demo/corpus.js';
import { vocabulary, writeTokenizerFiles } from '../../src/demo/tokenizer-files.js';
import { AutoTokenizer } from '../../src/tokenizer/tokenizer.js';

const CLI = resolve('dist/src/cli/main.js');

test('corpus and task: deterministic, held-out questions never in training', () => {
  assert.deepEqual(pretrainingTexts(5, 3), pretrainingTexts(5, 3));
  assert.notDeepEqual(pretrainingTexts(5, 3), pretrainingTexts(5, 4));
  const task = instructionTask(300, 40, 7);
  assert.equal(task.train.length, 300);
  const trainPrompts = new Set(task.train.map((r) => r.prompt));
  assert.ok(task.eval.every((r) => !trainPrompts.has(r.prompt)));
  for (const r of [...task.train, ...task.eval]) for (const w of `${r.prompt} ${r.completion}`.split(' ')) assert.ok(WORDS.includes(w), w);
});

test('the demo tokenizer: one id per word, letters for unknown words, template renders', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ftune-demo-tok-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const vocab = vocabulary(WORDS);
  writeTokenizerFiles(dir, vocab);
  const tok = AutoTokenizer.fromPretrainedSync(dir);
  const ids = tok.encode('sam has a red ball .');
  assert.deepEqual(ids, [1, ...['sam', 'has', 'a', 'red', 'ball', '.'].map((w) => vocab.indexOf(w))]);
  assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'sam has a red ball.');
  assert.deepEqual(tok.encode('zebra', { addSpecialTokens: false }), ['z', '##e', '##b', '##r', '##a'].map((w) => vocab.indexOf(w)));
  const text = tok.applyChatTemplate([{ role: 'user', content: 'who has it ?' }, { role: 'assistant', content: 'sam' }]);
  assert.equal(text, '<s>question : who has it ? answer : sam</s>');
});

test('ftune demo --quick: builds and caches a base, compares three methods, prints before/after', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ftune-demo-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const out = join(root, 'out');
  const r = spawnSync(process.execPath, [CLI, 'demo', '--quick', '--max-steps', '8', '--output', out], { encoding: 'utf8', env: { ...process.env, FTUNE_CACHE: join(root, 'cache') } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /pretrained in [\d.]+ s, cached in /);
  for (const m of ['full', 'LoRA', 'QLoRA']) assert.match(r.stdout, new RegExp(`^${m} +\\d`, 'm'), `${m} row`);
  assert.match(r.stdout, /before\/after \(greedy\):/);
  assert.equal(r.stdout.match(/^ {4}base {2}-> /gm)?.length, 3, 'three prompts');
  assert.equal(r.stdout.match(/^ {4}qlora -> /gm)?.length, 3);
  for (const f of ['report.md', 'report.json', 'report.html', 'data/train.jsonl', 'data/eval.jsonl']) assert.ok(existsSync(join(out, f)), f);
  assert.equal(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).methods.length, 3);
  // The second run finds the base in the cache.
  const again = buildBaseModel(QUICK_BASE, [], join(root, 'cache'));
  assert.equal(again.trained, false);
  assert.ok(existsSync(join(again.dir, 'model.safetensors')));
});
