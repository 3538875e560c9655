// The report's quality check and tables: gaps inside the 5% tolerance are stated as such,
// gaps outside it are stated with the measured numbers behind them; every column of the
// table is filled; report.json uses snake_case keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GAP_TOLERANCE, markdownTable, qualityGaps, reportJson, TABLE_HEADER, textTable } from '../../src/compare/report.js';
import type { MethodResult } from '../../src/compare/types.js';

function result(method: MethodResult['method'], evalLoss: number, before: number): MethodResult {
  return {
    method, trainableParams: method === 'full' ? 1000 : 50, totalParams: 1000, peakRssMiB: 100, accountedPeakMiB: 10, tokensPerSecond: 1234,
    wallSeconds: 2.5, steps: 10, trainLoss: 2, finalTrainLoss: 1.5, evalLossBefore: before, evalLoss, evalPerplexity: Math.exp(evalLoss),
    exactMatch: { accuracy: 0.25, correct: 1, rows: 4 }, samples: [], sizeOnDiskBytes: 2048, genTokensPerSecondUnmerged: 40,
    genTokensPerSecondMerged: method === 'full' ? null : 45, lossCurve: [], evalCurve: [], outputDir: '/x',
  };
}

test('qualityGaps: within tolerance, and outside it with the measured reasons', () => {
  assert.equal(GAP_TOLERANCE, 0.05);
  const close = qualityGaps([result('full', 2.0, 3), result('lora', 2.04, 3), result('qlora', 2.08, 3)]);
  assert.deepEqual(close.map((g) => [g.a, g.b, g.withinTolerance]), [['qlora', 'lora', true], ['lora', 'full', true]]);
  assert.match(close[0]?.explanation ?? '', /QLoRA eval loss 2\.0800 vs LoRA 2\.0400 \(\+2\.0%\): within 5%/);

  const far = qualityGaps([result('full', 1.0, 3), result('lora', 1.5, 3), result('qlora', 1.8, 3.3)]);
  assert.ok(far.every((g) => !g.withinTolerance));
  assert.match(far[0]?.explanation ?? '', /\+20\.0%\): outside 5%\. Before training the NF4-quantized base scored 3\.3000 against 3\.0000/);
  assert.match(far[1]?.explanation ?? '', /LoRA trains 50 parameters \(5\.00%\), full trains 1,000 parameters \(100\.00%\)/);
});

test('tables fill every column; report.json is snake_case', () => {
  const methods = [result('full', 2, 3), result('lora', 2.1, 3)];
  const md = markdownTable(methods).trim().split('\n');
  assert.equal(md.length, 4);
  for (const line of md) assert.equal(line.split('|').length - 2, TABLE_HEADER.length, line);
  assert.match(md[3] ?? '', /\| LoRA \| 50 \(5\.00%\) \| 100 MiB \| 1234 \| 2\.5 s \| 1\.5000 \| 2\.1000 \| 8\.17 \| 25\.0% \(1\/4\) \| 2\.0 KiB \| 40\.0 \/ 45\.0 \|/);
  assert.equal(textTable(methods).split('\n').length, 5);
  const json = JSON.parse(reportJson({ model: 'm', data: 'd', evalData: null, settings: {}, methods, gaps: [], tolerance: 0.05, createdAt: 't' })) as Record<string, unknown>;
  const first = (json['methods'] as Array<Record<string, unknown>>)[0] ?? {};
  for (const k of ['peak_rss_mib', 'tokens_per_second', 'gen_tokens_per_second_merged', 'eval_loss_before', 'size_on_disk_bytes']) assert.ok(k in first, k);
});
