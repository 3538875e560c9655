// report.html: one self-contained page (no scripts, fonts or external files): the table,
// inline SVG line charts of the training and eval loss per method over steps, and bar
// charts of peak memory, training tokens/s and generation tokens/s.
import { fmt, TABLE_HEADER, tableRow } from './report.js';
import type { CompareReport, MethodResult } from './types.js';

const COLORS: Record<MethodResult['method'], string> = { full: '#1f77b4', lora: '#ff7f0e', qlora: '#2ca02c' };
const W = 560, H = 300, PAD = { l: 56, r: 16, t: 28, b: 40 };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/** Round tick values spanning [lo, hi]. */
function ticks(lo: number, hi: number, n = 5): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => span / s <= n) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function axes(title: string, xLabel: string, yLabel: string, x: (v: number) => number, y: (v: number) => number, xt: number[], yt: number[]): string {
  const grid = yt.map((v) => `<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/><text x="${PAD.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${fmtTick(v)}</text>`);
  const xs = xt.map((v) => `<text x="${x(v).toFixed(1)}" y="${H - PAD.b + 16}" text-anchor="middle">${fmtTick(v)}</text>`);
  return `<text x="${W / 2}" y="16" text-anchor="middle" class="title">${escapeHtml(title)}</text>${grid.join('')}${xs.join('')}`
    + `<line x1="${PAD.l}" x2="${PAD.l}" y1="${PAD.t}" y2="${H - PAD.b}" class="axis"/><line x1="${PAD.l}" x2="${W - PAD.r}" y1="${H - PAD.b}" y2="${H - PAD.b}" class="axis"/>`
    + `<text x="${W / 2}" y="${H - 6}" text-anchor="middle">${escapeHtml(xLabel)}</text><text x="14" y="${H / 2}" text-anchor="middle" transform="rotate(-90 14 ${H / 2})">${escapeHtml(yLabel)}</text>`;
}

function fmtTick(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  if (a >= 100 || Number.isInteger(v)) return v.toFixed(0);
  return v.toFixed(a >= 1 ? 1 : 2);
}

/** Training loss (solid) and eval loss (dashed, dots) per method over optimizer steps. */
export function lossChart(methods: readonly MethodResult[]): string {
  const pts = methods.flatMap((m) => [...m.lossCurve, ...m.evalCurve]);
  if (pts.length === 0) return '';
  const xMax = Math.max(1, ...pts.map((p) => p.step));
  const yLo = Math.min(...pts.map((p) => p.loss)), yHi = Math.max(...pts.map((p) => p.loss));
  const pad = (yHi - yLo) * 0.05 || 0.1;
  const [lo, hi] = [Math.max(0, yLo - pad), yHi + pad];
  const x = (s: number): number => PAD.l + (s / xMax) * (W - PAD.l - PAD.r);
  const y = (v: number): number => H - PAD.b - ((v - lo) / (hi - lo)) * (H - PAD.t - PAD.b);
  const path = (c: Array<{ step: number; loss: number }>): string => c.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join(' ');
  const series = methods.map((m) => {
    const color = COLORS[m.method];
    const train = m.lossCurve.length > 0 ? `<path d="${path(m.lossCurve)}" fill="none" stroke="${color}" stroke-width="2" class="series train-${m.method}"/>` : '';
    const ev = m.evalCurve.length > 0 ? `<path d="${path(m.evalCurve)}" fill="none" stroke="${color}" stroke-width="1.5" stroke-dasharray="5 4" class="series eval-${m.method}"/>`
      + m.evalCurve.map((p) => `<circle cx="${x(p.step).toFixed(1)}" cy="${y(p.loss).toFixed(1)}" r="3" fill="${color}"/>`).join('') : '';
    return train + ev;
  });
  const legend = methods.map((m, i) => `<g transform="translate(${W - PAD.r - 150},${PAD.t + 8 + i * 16})"><line x1="0" x2="18" y1="0" y2="0" stroke="${COLORS[m.method]}" stroke-width="2"/><text x="24" y="4">${m.method} (dashed: eval)</text></g>`);
  return `<svg class="chart" id="loss-chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="loss curves">`
    + `${axes('Loss per step', 'optimizer step', 'loss', x, y, ticks(0, xMax, 6).filter((v) => v <= xMax), ticks(lo, hi))}${series.join('')}${legend.join('')}</svg>`;
}

/** One bar per method. */
export function barChart(id: string, title: string, unit: string, methods: readonly MethodResult[], value: (m: MethodResult) => number | null): string {
  const vals = methods.map((m) => ({ m, v: value(m) })).filter((e): e is { m: MethodResult; v: number } => e.v !== null && Number.isFinite(e.v));
  if (vals.length === 0) return '';
  const hi = Math.max(...vals.map((e) => e.v)) * 1.12 || 1;
  const y = (v: number): number => H - PAD.b - (v / hi) * (H - PAD.t - PAD.b);
  const slot = (W - PAD.l - PAD.r) / vals.length;
  const bars = vals.map((e, i) => {
    const bx = PAD.l + i * slot + slot * 0.2, bw = slot * 0.6, top = y(e.v);
    return `<rect class="bar bar-${e.m.method}" x="${bx.toFixed(1)}" y="${top.toFixed(1)}" width="${bw.toFixed(1)}" height="${(H - PAD.b - top).toFixed(1)}" fill="${COLORS[e.m.method]}"/>`
      + `<text x="${(bx + bw / 2).toFixed(1)}" y="${(top - 5).toFixed(1)}" text-anchor="middle">${fmt(e.v, e.v >= 100 ? 0 : 1)}</text>`
      + `<text x="${(bx + bw / 2).toFixed(1)}" y="${H - PAD.b + 16}" text-anchor="middle">${e.m.method}</text>`;
  });
  const grid = ticks(0, hi).filter((v) => v <= hi).map((v) => `<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/><text x="${PAD.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${fmtTick(v)}</text>`);
  return `<svg class="chart" id="${id}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(title)}">`
    + `<text x="${W / 2}" y="16" text-anchor="middle" class="title">${escapeHtml(title)}</text>${grid.join('')}`
    + `<line x1="${PAD.l}" x2="${PAD.l}" y1="${PAD.t}" y2="${H - PAD.b}" class="axis"/><line x1="${PAD.l}" x2="${W - PAD.r}" y1="${H - PAD.b}" y2="${H - PAD.b}" class="axis"/>`
    + `<text x="14" y="${H / 2}" text-anchor="middle" transform="rotate(-90 14 ${H / 2})">${escapeHtml(unit)}</text>${bars.join('')}</svg>`;
}

const STYLE = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:12px 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{border:1px solid #e3e3e3;background:#fff}.chart text{font-size:11px;fill:#333}.chart .title{font-size:13px;font-weight:600}
.grid{stroke:#eee}.axis{stroke:#666}.ok{color:#2a7a2a}.gap{color:#a35a00}code{background:#f5f5f5;padding:0 3px}`;

export function htmlReport(r: CompareReport): string {
  const head = `<tr>${TABLE_HEADER.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`;
  const rows = r.methods.map((m) => `<tr>${tableRow(m).map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('');
  const gaps = r.gaps.map((g) => `<li class="${g.withinTolerance ? 'ok' : 'gap'}">${escapeHtml(g.explanation)}</li>`).join('');
  const settings = Object.entries(r.settings).map(([k, v]) => `<code>${escapeHtml(`${k}=${String(v)}`)}</code>`).join(' ');
  const charts = [
    lossChart(r.methods),
    barChart('memory-chart', 'Peak RSS per method', 'MiB', r.methods, (m) => m.peakRssMiB),
    barChart('speed-chart', 'Training tokens/s', 'tokens/s', r.methods, (m) => m.tokensPerSecond),
    barChart('gen-chart', 'Generation tokens/s (unmerged)', 'tokens/s', r.methods, (m) => m.genTokensPerSecondUnmerged),
  ].join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ftune compare</title><style>${STYLE}</style></head>
<body>
<h1>ftune compare</h1>
<p>Model <code>${escapeHtml(r.model)}</code>, data <code>${escapeHtml(r.data)}</code>${r.evalData !== null ? `, eval data <code>${escapeHtml(r.evalData)}</code>` : ''}.<br>Settings: ${settings}</p>
<table>${head}${rows}</table>
<h2>Quality</h2>
<ul>${gaps === '' ? '<li>No pair of methods with an eval loss to compare.</li>' : gaps}</ul>
<h2>Charts</h2>
<div class="charts">
${charts}
</div>
<p>Generated ${escapeHtml(r.createdAt)} by ftune compare.</p>
</body></html>
`;
}
