// report.html renders in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core, no browser download) without console errors, and its four SVG charts
// are drawn: a loss path per method (train and eval), and one bar per method in each
// bar chart. A screenshot goes to a temp dir. Without chromium the test skips locally
// and fails under CI=true (.ci/run installs it).
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { htmlReport } from '../../src/compare/report-html.js';
import { qualityGaps } from '../../src/compare/report.js';
import type { CompareReport, MethodResult } from '../../src/compare/types.js';

const CHROMIUM = process.env['FTUNE_CHROMIUM'] ?? '/usr/bin/chromium';

function method(m: MethodResult['method'], loss0: number, rss: number, tps: number): MethodResult {
  const lossCurve = Array.from({ length: 10 }, (_, i) => ({ step: i + 1, loss: loss0 - 0.2 * i }));
  return {
    method: m, trainableParams: m === 'full' ? 1000 : 100, totalParams: 1000, peakRssMiB: rss, accountedPeakMiB: rss / 2,
    tokensPerSecond: tps, wallSeconds: 3, steps: 10, trainLoss: loss0 - 1, finalTrainLoss: loss0 - 1.8, evalLossBefore: loss0,
    evalLoss: loss0 - 1.7, evalPerplexity: Math.exp(loss0 - 1.7), exactMatch: { accuracy: 0.5, correct: 4, rows: 8 },
    samples: [{ prompt: 'q <b>&', reference: 'a', generated: 'a', match: true }], sizeOnDiskBytes: 4096,
    genTokensPerSecondUnmerged: 50, genTokensPerSecondMerged: m === 'full' ? null : 60, lossCurve,
    evalCurve: [{ step: 0, loss: loss0 }, { step: 10, loss: loss0 - 1.7 }], outputDir: `/tmp/${m}`,
  };
}

test('report.html renders in headless Chromium with its charts and no console errors', async (t) => {
  if (!existsSync(CHROMIUM)) {
    if (process.env['CI'] === 'true') assert.fail(`${CHROMIUM} is missing (.ci/run installs the chromium package)`);
    t.skip(`${CHROMIUM} is missing: apt-get install chromium`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ftune-html-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const methods = [method('full', 4, 300, 2000), method('lora', 4.1, 200, 2500), method('qlora', 4.2, 150, 1800)];
  const report: CompareReport = {
    model: 'm <x>', data: 'd.json', evalData: 'e.json', settings: { 'max-steps': 10, lr: '1e-3' }, methods,
    gaps: qualityGaps(methods), tolerance: 0.05, createdAt: '2025-01-01T00:00:00.000Z',
  };
  const html = htmlReport(report);
  assert.doesNotMatch(html, /<script|<link|@import|url\(|https?:\/\//, 'self-contained: no scripts, links or external URLs');
  const page = join(dir, 'report.html');
  writeFileSync(page, html);

  // A fresh profile dir (playwright passes it as --user-data-dir).
  const browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 1400 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const tab = await browser.newPage();
    const errors: string[] = [];
    tab.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
    tab.on('pageerror', (e) => errors.push(e.message));
    await tab.goto(pathToFileURL(page).href);
    assert.equal(await tab.locator('svg.chart').count(), 4, 'loss, memory, speed and generation charts');
    assert.equal(await tab.locator('#loss-chart path.series').count(), 6, 'a train and an eval path per method');
    for (const id of ['memory-chart', 'speed-chart', 'gen-chart']) assert.equal(await tab.locator(`#${id} rect.bar`).count(), 3, `${id}: a bar per method`);
    const box = await tab.locator('#loss-chart').boundingBox();
    assert.ok(box !== null && box.width > 300 && box.height > 200, 'the loss chart is laid out');
    assert.equal(await tab.locator('table tr').count(), 4, 'header + one row per method');
    assert.match(await tab.locator('h1').innerText(), /ftune compare/);
    const shot = join(dir, 'report.png');
    await tab.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 10_000, 'a screenshot with content');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
