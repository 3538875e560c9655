// The comparison report: the quality-gap check (QLoRA vs LoRA, LoRA vs full, each within
// a tolerance or explained from measured numbers), the table every output shares, and
// report.md / report.json.
import type { CompareReport, MethodResult, QualityGap } from './types.js';

/** Eval losses within this relative distance count as "the same quality" (the seed's claim). */
export const GAP_TOLERANCE = 0.05;

const NAMES: Record<MethodResult['method'], string> = { full: 'full', lora: 'LoRA', qlora: 'QLoRA' };
const pct = (x: number, digits = 1): string => `${(100 * x).toFixed(digits)}%`;
const signedPct = (x: number): string => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`;

export function mib(bytes: number): number {
  return bytes / 2 ** 20;
}

function gapExplanation(a: MethodResult, b: MethodResult, rel: number, ok: boolean): string {
  const [na, nb] = [NAMES[a.method], NAMES[b.method]];
  const head = `${na} eval loss ${fmt(a.evalLoss, 4)} vs ${nb} ${fmt(b.evalLoss, 4)} (${signedPct(rel)})`;
  if (ok) return `${head}: within ${pct(GAP_TOLERANCE, 0)}.`;
  const parts: string[] = [`${head}: outside ${pct(GAP_TOLERANCE, 0)}.`];
  const moved = (m: MethodResult): string => `${NAMES[m.method]} moved eval loss ${fmt(m.evalLossBefore, 4)} -> ${fmt(m.evalLoss, 4)}`;
  if (a.method === 'qlora' && b.method === 'lora') {
    const q0 = a.evalLossBefore, l0 = b.evalLossBefore;
    if (q0 !== null && l0 !== null) {
      parts.push(`Before training the NF4-quantized base scored ${fmt(q0, 4)} against ${fmt(l0, 4)} for the unquantized base (${signedPct((q0 - l0) / l0)} from 4-bit rounding alone);`);
    }
    parts.push(`the rest comes from training through the rounded weights with bf16 compute for ${a.steps} steps (${moved(a)}; ${moved(b)}).`);
  } else {
    const share = (m: MethodResult): string => `${NAMES[m.method]} trains ${m.trainableParams.toLocaleString('en-US')} parameters (${pct(m.trainableParams / m.totalParams, 2)})`;
    parts.push(`${share(a)}, ${share(b)}, both for ${a.steps} steps on the same batches;`);
    parts.push(rel > 0
      ? `with this few steps and a rank-limited update the adapter has not caught up (${moved(a)}; ${moved(b)}); more steps, a higher rank or more target modules narrow the gap.`
      : `the adapter did better here (${moved(a)}; ${moved(b)}): full fine-tuning's learning rate or step count was not enough to use its extra capacity, or it began to overfit.`);
  }
  return parts.join(' ');
}

/** QLoRA vs LoRA and LoRA vs full, for the methods present that have an eval loss. */
export function qualityGaps(methods: readonly MethodResult[]): QualityGap[] {
  const by = (m: string): MethodResult | undefined => methods.find((r) => r.method === m && r.evalLoss !== null);
  const gaps: QualityGap[] = [];
  for (const [x, y] of [['qlora', 'lora'], ['lora', 'full']] as const) {
    const a = by(x), b = by(y);
    if (a?.evalLoss == null || b?.evalLoss == null) continue;
    const relative = (a.evalLoss - b.evalLoss) / b.evalLoss;
    const ok = Math.abs(relative) <= GAP_TOLERANCE;
    gaps.push({ a: x, b: y, relative, withinTolerance: ok, explanation: gapExplanation(a, b, relative, ok) });
  }
  return gaps;
}

export function fmt(x: number | null, digits = 2): string {
  return x === null || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits);
}

function fmtBytes(b: number): string {
  if (b >= 2 ** 20) return `${(b / 2 ** 20).toFixed(2)} MiB`;
  return `${(b / 1024).toFixed(1)} KiB`;
}

function fmtCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export const TABLE_HEADER = [
  'method', 'trainable params', 'peak RSS', 'train tok/s', 'wall', 'final train loss', 'eval loss', 'eval ppl', 'exact match', 'size on disk', 'gen tok/s (unmerged / merged)',
] as const;

/** One row of the table, as text cells in TABLE_HEADER order. */
export function tableRow(m: MethodResult): string[] {
  const em = m.exactMatch === null ? 'n/a (no reference answers)' : `${pct(m.exactMatch.accuracy)} (${m.exactMatch.correct}/${m.exactMatch.rows})`;
  const gen = m.genTokensPerSecondMerged === null ? fmt(m.genTokensPerSecondUnmerged, 1) : `${fmt(m.genTokensPerSecondUnmerged, 1)} / ${fmt(m.genTokensPerSecondMerged, 1)}`;
  return [
    NAMES[m.method], `${fmtCount(m.trainableParams)} (${pct(m.trainableParams / m.totalParams, 2)})`, `${m.peakRssMiB.toFixed(0)} MiB`,
    fmt(m.tokensPerSecond, 0), `${m.wallSeconds.toFixed(1)} s`, fmt(m.finalTrainLoss, 4), fmt(m.evalLoss, 4), fmt(m.evalPerplexity, 2),
    em, fmtBytes(m.sizeOnDiskBytes), gen,
  ];
}

/** The comparison table as Markdown. */
export function markdownTable(methods: readonly MethodResult[]): string {
  const rows = [[...TABLE_HEADER], TABLE_HEADER.map(() => '---'), ...methods.map(tableRow)];
  return `${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}\n`;
}

/** The table with aligned columns for a terminal. */
export function textTable(methods: readonly MethodResult[]): string {
  const rows = [[...TABLE_HEADER], ...methods.map(tableRow)];
  const widths = TABLE_HEADER.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]): string => r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd();
  return `${[line(rows[0] ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n')}\n`;
}

export function markdownReport(r: CompareReport): string {
  const settings = Object.entries(r.settings).map(([k, v]) => `${k}=${String(v)}`).join(', ');
  const out = [
    '# ftune compare',
    '',
    `Model \`${r.model}\`, data \`${r.data}\`${r.evalData !== null ? `, eval data \`${r.evalData}\`` : ''}. Settings: ${settings}.`,
    '',
    markdownTable(r.methods),
    'Peak RSS is the resident-set high-water mark of the process that trained the method (one process per method), taken right after training. '
      + 'Exact match: greedy answers to eval rows that have a reference answer, normalized (case, whitespace, trailing punctuation; GSM8K: the final number). '
      + 'Generation tokens/s: greedy, unmerged adapter / after mergeAndUnload.',
    '',
    '## Quality',
    '',
    ...(r.gaps.length === 0 ? ['No pair of methods with an eval loss to compare (pass --eval-data or --val-split).'] : r.gaps.map((g) => `- ${g.explanation}`)),
    '',
  ];
  const samples = r.methods.filter((m) => m.samples.length > 0);
  if (samples.length > 0) {
    out.push('## Sample answers', '');
    for (const m of samples) {
      for (const s of m.samples) out.push(`- ${NAMES[m.method]}: prompt ${JSON.stringify(s.prompt.slice(-80))} -> ${JSON.stringify(s.generated)} (reference ${JSON.stringify(s.reference)}, ${s.match ? 'match' : 'no match'})`);
    }
    out.push('');
  }
  return out.join('\n');
}

/** report.json: the report with snake_case keys, as the other JSON outputs of ftune. */
export function reportJson(r: CompareReport): string {
  const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/_mi_b/g, '_mib');
  const convert = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(convert);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [snake(k), convert(x)]));
    return v;
  };
  return `${JSON.stringify(convert(r), null, 2)}\n`;
}
