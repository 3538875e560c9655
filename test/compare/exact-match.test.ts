// The exact-match rule (docs/compare.md): normalization, GSM8K final numbers, and which
// tokenized rows carry a reference answer (a masked prompt followed by labels).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answersMatch, finalNumber, normalizeAnswer, referenceRows } from '../../src/compare/exact-match.js';

test('normalizeAnswer: case, whitespace and trailing punctuation', () => {
  assert.equal(normalizeAnswer('  The  Answer\nis Paris.  '), 'the answer is paris');
  assert.equal(normalizeAnswer('Yes!?'), 'yes');
  assert.equal(normalizeAnswer('3.5'), '3.5');
});

test('finalNumber: the #### answer, else the last number, without separators', () => {
  assert.equal(finalNumber('She makes 9 * 2 = $18 every day.\n#### 18'), '18');
  assert.equal(finalNumber('so 1,250 in total'), '1250');
  assert.equal(finalNumber('#### -3.50'), '-3.5');
  assert.equal(finalNumber('no digits'), undefined);
});

test('answersMatch: GSM8K compares final numbers, other references the normalized text', () => {
  assert.ok(answersMatch('9 * 2 = 18 dollars', 'She makes $18.\n#### 18'));
  assert.ok(!answersMatch('#### 17', 'He has 18.\n#### 18'));
  assert.ok(answersMatch('Red.', 'red'));
  assert.ok(!answersMatch('red ball', 'red'));
});

test('referenceRows: prompt before the first label, answer without EOS; text rows have none', () => {
  const eos = 2;
  const rows = referenceRows([
    { inputIds: [1, 10, 11, 20, 21, eos], labels: [-100, -100, -100, 20, 21, eos] },
    { inputIds: [1, 5, 6, eos], labels: [1, 5, 6, eos] }, // a text row: every token labelled
    { inputIds: [1, 7, 8], labels: [-100, -100, -100] }, // answer truncated away
  ], [eos]);
  assert.deepEqual(rows, [{ promptIds: [1, 10, 11], referenceIds: [20, 21] }]);
});
