// Code tables of bitsandbytes 4-bit and 8-bit quantization: NF4 and FP4 exactly as
// functional.py get_4bit_type, the 256-entry dynamic map of create_dynamic_map, and the
// decision thresholds (midpoints, ties to the lower code).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { code4, createDynamicMap, FP4, midpoints, NF4, nearestSorted } from '../../src/quant/tables.js';

const f32 = Math.fround;

test('NF4 table is the hard-coded bitsandbytes table (formats-and-features.md 2.4)', () => {
  const spec = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
    -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
  ];
  // Every spec value is an exact float32 (printed with enough digits to round-trip).
  for (const v of spec) assert.equal(f32(v), v);
  assert.deepEqual(Array.from(NF4), spec);
});

test('FP4 table: sign bit + magnitudes 0, 0.0625, 8, 12, 4, 6, 2, 3 over 12 in f32', () => {
  const mags = [0, 0.0625, 8, 12, 4, 6, 2, 3];
  assert.equal(FP4.length, 16);
  mags.forEach((m, i) => {
    assert.equal(FP4[i], f32(m / 12), `code ${i}`);
    assert.equal(FP4[i + 8], -f32(m / 12), `code ${i + 8}`);
  });
  assert.equal(FP4[3], 1);
  assert.ok(Object.is(FP4[8], -0), 'code 8 is -0');
  assert.equal(FP4[1], f32(0.0625 / 12));  // 0.0052...
});

test('dynamic map (signed, 7 exponent bits, 8 bits): 256 sorted values in [-0.99297, 1]', () => {
  const m = createDynamicMap();
  assert.equal(m.length, 256);
  for (let i = 1; i < 256; i++) assert.ok((m[i] ?? 0) > (m[i - 1] ?? 0), `strictly increasing at ${i}`);
  // 127 negatives (2^0 + ... + 2^6 means), 0, 127 positives, 1.0.
  assert.equal(m[127], 0);
  assert.equal(m[255], 1);
  assert.equal(m[0], f32(-0.99296875));  // -(1 + (1 - 0.9/64)) / 2: the last mean of linspace(0.1, 1, 65)
  assert.equal(m[254], f32(0.99296875));
  // Entries where the f32 construction rounds benignly; they agree with the published
  // dump of bitsandbytes' map (0.12109375 = mean of 0.1 + 0.9*{1,2}/64 scaled by 1, etc.).
  const known: [number, number][] = [
    [1, -0.9789062738418579], [2, -0.96484375], [64, -0.09859374910593033], [120, -8.874999912222847e-05],
    [130, 7.749999895168003e-06], [192, 0.12109375], [250, 0.936718761920929], [253, 0.9789062738418579],
  ];
  for (const [i, v] of known) assert.equal(m[i], v, `entry ${i}`);
  // The smallest magnitude: level i = 0 is linspace(0.1, 1, 2) = [0.1, 1], one mean
  // (0.1f + 1) / 2, times the f32 scalar 1e-6 (torch casts the Python scalar to f32).
  assert.equal(m[128], f32(f32(1e-6) * f32(f32(f32(0.1) + 1) / 2)));
  assert.equal(m[126], -(m[128] ?? 0));
  // Level i holds 2^i means of magnitude in [0.1, 1] * 10^(i - 6) on each side.
  for (let i = 0; i < 7; i++) {
    const lo = 0.1 * 10 ** (i - 6), hi = 10 ** (i - 6);
    assert.equal(Array.from(m).filter((v) => v > lo && v < hi).length, 2 ** i, `level ${i}`);
  }
});

test('nearest code: thresholds are f32 midpoints, a value on a midpoint takes the lower code', () => {
  const t = midpoints(NF4);
  assert.equal(t.length, 15);
  for (let i = 0; i < 15; i++) {
    const mid = t[i] ?? 0;
    assert.equal(mid, f32(((NF4[i] ?? 0) + (NF4[i + 1] ?? 0)) / 2));
    assert.equal(nearestSorted(mid, t), i, `on midpoint ${i}`);
    assert.equal(code4(mid, 'nf4'), i);
    const above = mid + Math.max(Math.abs(mid), 1e-30) * 2 ** -23;  // at least one f32 ulp above
    assert.equal(code4(f32(above), 'nf4'), i + 1, `above midpoint ${i}`);
  }
  for (let c = 0; c < 16; c++) assert.equal(code4(NF4[c] ?? 0, 'nf4'), c, `NF4 value ${c}`);
  assert.equal(code4(0, 'nf4'), 7);
  assert.equal(code4(-1, 'nf4'), 0);
  assert.equal(code4(1, 'nf4'), 15);
  // kernels.cu dQuantizeNF4's first pivot 0.03979014977812767f is the 7|8 midpoint.
  assert.equal(t[7], f32(0.03979014977812767));
});

test('FP4 codes: sign bit, then the nearest magnitude with ties to the smaller one', () => {
  for (let c = 0; c < 16; c++) assert.equal(code4(FP4[c] ?? 0, 'fp4'), c === 8 ? 0 : c, `FP4 value ${c}`);
  // dQuantizeFP4 pivots (kernels.cu): midpoints of sorted magnitudes 0, 1/192, 1/6, 1/4, 1/3, 1/2, 2/3, 1.
  const sorted = Float32Array.from([0, 1, 6, 7, 4, 5, 2, 3], (c) => FP4[c] ?? 0);
  const t = midpoints(sorted);
  assert.equal(t[1], 0.0859375);
  const codeOf = [0, 1, 6, 7, 4, 5, 2, 3];
  for (let i = 0; i < 7; i++) {
    assert.equal(code4(t[i] ?? 0, 'fp4'), codeOf[i], `on +midpoint ${i}`);
    assert.equal(code4(-(t[i] ?? 0), 'fp4'), 8 + (codeOf[i] ?? 0), `on -midpoint ${i}`);
  }
  assert.equal(code4(-0.001, 'fp4'), 8);  // negative, rounds to -0
  assert.equal(code4(0, 'fp4'), 0);
});
