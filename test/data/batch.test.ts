// Validation split, packing and the DataLoader: determinism per (seed, epoch), padding
// with the pad id and IGNORE_INDEX labels, and the shifted loss-token count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DataLoader, IGNORE_INDEX, collate, packExamples, padIdOf, splitValidation, type Example,
} from '../../src/data/index.js';
import { ConfigError } from '../../src/errors.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { fixture } from '../helpers/data.js';
import { Rng } from '../helpers/random.js';

/** n examples with ids 1000*i + t, lengths 2..9, the first half of each masked. */
function examples(n: number, seed = 7): Example[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const len = 2 + rng.int(8);
    const inputIds = Array.from({ length: len }, (_, t) => 1000 * i + t);
    return { inputIds, labels: inputIds.map((id, t) => (t < len / 2 ? IGNORE_INDEX : id)) };
  });
}

const key = (ex: Example): number => Math.floor((ex.inputIds[0] ?? 0) / 1000);

test('splitValidation: deterministic, disjoint, covers everything, order kept', () => {
  const data = examples(40);
  const a = splitValidation(data, 0.1, 3);
  const b = splitValidation(data, 0.1, 3);
  assert.deepEqual(a.eval.map(key), b.eval.map(key));
  assert.equal(a.eval.length, 4);
  assert.equal(a.train.length, 36);
  const all = [...a.train.map(key), ...a.eval.map(key)].sort((x, y) => x - y);
  assert.deepEqual(all, data.map(key));
  assert.deepEqual(a.train.map(key), [...a.train.map(key)].sort((x, y) => x - y));
  assert.notDeepEqual(splitValidation(data, 0.1, 4).eval.map(key), a.eval.map(key));
  assert.equal(splitValidation(examples(3), 0.01, 1).eval.length, 1, 'at least one eval example');
  assert.throws(() => splitValidation(data, 1, 0), ConfigError);
  assert.throws(() => splitValidation(data, 0, 0), ConfigError);
  assert.throws(() => splitValidation(examples(1), 0.5, 0), /leaves no training examples/);
});

test('packExamples keeps every token and label; rows are seqLen but the last', () => {
  const data = examples(9);
  const flatIds = data.flatMap((e) => e.inputIds);
  const flatLabels = data.flatMap((e) => e.labels);
  const packed = packExamples(data, 8);
  assert.deepEqual(packed.flatMap((e) => e.inputIds), flatIds);
  assert.deepEqual(packed.flatMap((e) => e.labels), flatLabels);
  packed.slice(0, -1).forEach((e) => assert.equal(e.inputIds.length, 8));
  assert.equal(packed[packed.length - 1]?.inputIds.length, flatIds.length - 8 * (packed.length - 1));
  assert.throws(() => packExamples(data, 1), ConfigError);
});

test('packExamples with eosId appends a separator to examples not ending in it', () => {
  const data: Example[] = [
    { inputIds: [5, 6, 2], labels: [IGNORE_INDEX, 6, 2] },
    { inputIds: [7, 8], labels: [IGNORE_INDEX, 8] },
    { inputIds: [9, 10], labels: [9, IGNORE_INDEX] },
  ];
  const packed = packExamples(data, 4, 2);
  assert.deepEqual(packed.map((e) => e.inputIds), [[5, 6, 2, 7], [8, 2, 9, 10], [2]]);
  assert.deepEqual(packed.map((e) => e.labels), [[IGNORE_INDEX, 6, 2, IGNORE_INDEX], [8, 2, 9, IGNORE_INDEX], [IGNORE_INDEX]]);
});

test('collate right-pads with the pad id, labels IGNORE_INDEX, and counts shifted loss tokens', () => {
  const batch = collate([
    { inputIds: [1, 2, 3], labels: [1, IGNORE_INDEX, 3] },
    { inputIds: [4, 5, 6, 7, 8], labels: [4, 5, IGNORE_INDEX, 7, 8] },
  ], 0);
  assert.equal(batch.batchSize, 2);
  assert.equal(batch.seqLen, 5);
  assert.deepEqual([...batch.inputIds], [1, 2, 3, 0, 0, 4, 5, 6, 7, 8]);
  assert.deepEqual([...batch.labels], [1, -100, 3, -100, -100, 4, 5, -100, 7, 8]);
  // Position 0 never counts (nothing predicts it): row 0 -> {3}, row 1 -> {5, 7, 8}.
  assert.equal(batch.lossTokens, 4);
});

test('DataLoader: same batches per (seed, epoch), new order per epoch, each example once', () => {
  const data = examples(10);
  const opts = { batchSize: 3, shuffle: true, seed: 11, padId: 0 };
  const loader = new DataLoader(data, opts);
  assert.equal(loader.length, 4);
  assert.equal(new DataLoader(data, { ...opts, dropLast: true }).length, 3);
  const e0 = loader.epoch(0);
  const resumed = new DataLoader(data, opts);
  assert.deepEqual(resumed.epoch(2), loader.epoch(2));
  assert.deepEqual(loader.epoch(0), e0);
  const firstKeys = (bs: ReturnType<DataLoader['epoch']>): number[] => bs.map((b) => Math.floor((b.inputIds[0] ?? 0) / 1000));
  assert.notDeepEqual(firstKeys(loader.epoch(1)), firstKeys(e0));
  assert.equal(e0.length, 4);
  assert.deepEqual(e0.map((b) => b.batchSize), [3, 3, 3, 1]);
  // Every example appears exactly once, padded to its batch's longest example.
  const seen: number[] = [];
  let loss = 0;
  for (const b of e0) {
    for (let r = 0; r < b.batchSize; r++) {
      const row = [...b.inputIds.subarray(r * b.seqLen, (r + 1) * b.seqLen)];
      const labels = [...b.labels.subarray(r * b.seqLen, (r + 1) * b.seqLen)];
      const ex = data[Math.floor((row[0] ?? 0) / 1000)];
      assert.ok(ex);
      seen.push(key(ex));
      const pad = b.seqLen - ex.inputIds.length;
      assert.deepEqual(row, [...ex.inputIds, ...new Array<number>(pad).fill(0)]);
      assert.deepEqual(labels, [...ex.labels, ...new Array<number>(pad).fill(IGNORE_INDEX)]);
    }
    assert.equal(b.seqLen, Math.max(...Array.from({ length: b.batchSize }, (_, r) => {
      const ex = data[Math.floor((b.inputIds[r * b.seqLen] ?? 0) / 1000)];
      return ex?.inputIds.length ?? 0;
    })));
    loss += b.lossTokens;
  }
  assert.deepEqual(seen.sort((x, y) => x - y), data.map(key));
  assert.equal(loss, data.reduce((s, ex) => s + ex.labels.slice(1).filter((l) => l !== IGNORE_INDEX).length, 0));
  const plain = new DataLoader(data, { ...opts, shuffle: false }).epoch(5);
  assert.deepEqual(plain.map((b) => Math.floor((b.inputIds[0] ?? 0) / 1000)), [0, 3, 6, 9]);
  assert.throws(() => new DataLoader(data, { ...opts, batchSize: 0 }), ConfigError);
});

test('padIdOf: pad token, else EOS, else 0', (t) => {
  const llama = fixture(t, 'tokenizers', 'llama2-tiny-random');
  const stories = fixture(t, 'hf_models', 'stories260K-hf');
  if (!llama || !stories) return;
  assert.equal(padIdOf(Tokenizer.fromDir(llama)), 0, 'pad_token <unk>');
  assert.equal(padIdOf(Tokenizer.fromDir(stories)), 2, 'no pad token: EOS');
});
