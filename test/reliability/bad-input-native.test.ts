// Native safety: every native entry point checks the sizes it is given. For each kernel a
// valid small call returns 0; every integer argument swept over hostile values (negative,
// 2^31, 2^40, 2^53, 2^62, 2^63, NaN, +-Infinity) returns a status (0 ok when the value
// happens to be valid, 1 size, 2 argument, 4 alloc) and never touches memory out of
// bounds; every buffer replaced by an empty one is rejected. Under scripts/asan.sh this
// runs with AddressSanitizer + UBSan, which turn any out-of-bounds access or overflow into
// a failure.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { native, type NativeAddon } from '../../src/backend/native/addon.js';
import type { Q4WeightArgs } from '../../src/backend/native/addon-quant.js';

type Arg = Float32Array | Float64Array | Uint16Array | Int32Array | Uint8Array | number | boolean | null | Q4WeightArgs;
interface Spec {
  fn: keyof NativeAddon;
  args: () => Arg[];
  /** Indices of integer (dimension) arguments to sweep. */
  ints: number[];
  /** Optional buffers (bias, dw): an empty one reads as absent, so status 0 is right. */
  optional?: number[];
}

const E = 4096; // elements in every buffer: ample for the small valid dims below
const f32 = (): Float32Array => new Float32Array(E).fill(0.5);
const u16 = (): Uint16Array => new Uint16Array(E).fill(0x3f00);
const i32 = (): Int32Array => new Int32Array(E);
const f64 = (): Float64Array => new Float64Array(E);
const u8 = (): Uint8Array => new Uint8Array(E);
const sortedMap = (): Float32Array => Float32Array.from({ length: 256 }, (_, i) => -1 + (2 * i) / 255);

/** A valid 4-bit weight (N, K) = (4, 64), blocksize 64, double quant (nested blocks of 256). */
function weight(): Q4WeightArgs {
  return {
    codes: u8(), map: f32(), absmax: null, nestedCodes: u8(), nestedAbsmax: f32(), nestedMap: sortedMap(),
    offset: 0, N: 4, K: 64, blocksize: 64, nestedBlocksize: 256,
  };
}

const SPECS: Spec[] = [
  { fn: 'gemmF32', args: () => [f32(), f32(), f32(), 4, 4, 4, false, false, false, null], ints: [3, 4, 5] },
  { fn: 'gemmBf16', args: () => [u16(), u16(), f32(), 4, 4, 4, false, true, false, f32()], ints: [3, 4, 5], optional: [9] },
  { fn: 'castF32ToBf16', args: () => [f32(), u16(), 8], ints: [2] },
  { fn: 'castBf16ToF32', args: () => [u16(), f32(), 8], ints: [2] },
  { fn: 'castF16ToF32', args: () => [u16(), f32(), 8], ints: [2] },
  { fn: 'opsEmbeddingF32', args: () => [i32(), f32(), f32(), 4, 4, 4], ints: [3, 4, 5] },
  { fn: 'opsEmbeddingBf16', args: () => [i32(), u16(), f32(), 4, 4, 4], ints: [3, 4, 5] },
  { fn: 'opsRmsnormF32', args: () => [f32(), f32(), f32(), 4, 4, 1e-5], ints: [3, 4] },
  { fn: 'opsRopeF32', args: () => [f32(), i32(), f32(), f32(), 1, 4, 2, 4], ints: [4, 5, 6, 7] },
  { fn: 'opsAttentionF32', args: () => [f32(), f32(), f32(), f32(), 1, 2, 2, 1, 4, 4, 2, 0.5, false], ints: [4, 5, 6, 7, 8, 9, 10] },
  { fn: 'opsAttentionF32', args: () => [f32(), f32(), f32(), f32(), 1, 2, 2, 1, 4, 4, 2, 0.5, true], ints: [4, 5, 6, 7, 8, 9, 10] },
  { fn: 'opsSiluMulF32', args: () => [f32(), f32(), f32(), 8], ints: [3] },
  { fn: 'opsAddF32', args: () => [f32(), f32(), f32(), 8], ints: [3] },
  { fn: 'opsSoftmaxF32', args: () => [f32(), f32(), 4, 4, 1], ints: [2, 3] },
  { fn: 'opsArgmaxF32', args: () => [f32(), i32(), 4, 4], ints: [2, 3] },
  { fn: 'gradSumRowsF32', args: () => [f32(), f32(), 4, 4, false], ints: [2, 3] },
  { fn: 'gradEmbeddingBwdF32', args: () => [i32(), f32(), f32(), 4, 4, 4], ints: [3, 4, 5] },
  { fn: 'gradRmsnormBwdF32', args: () => [f32(), f32(), f32(), f32(), f32(), 4, 4, 1e-5, false], ints: [5, 6], optional: [4] },
  { fn: 'gradRopeBwdF32', args: () => [f32(), i32(), f32(), f32(), 1, 4, 2, 4], ints: [4, 5, 6, 7] },
  { fn: 'gradAttentionBwdF32', args: () => [f32(), f32(), f32(), f32(), f32(), f32(), f32(), 1, 2, 2, 1, 4, 4, 2, 0.5, false], ints: [7, 8, 9, 10, 11, 12, 13] },
  { fn: 'gradAttentionBwdF32', args: () => [f32(), f32(), f32(), f32(), f32(), f32(), f32(), 1, 2, 2, 1, 4, 4, 2, 0.5, true], ints: [7, 8, 9, 10, 11, 12, 13] },
  { fn: 'gradSiluMulBwdF32', args: () => [f32(), f32(), f32(), f32(), f32(), 8], ints: [5] },
  { fn: 'gradCrossEntropyF32', args: () => [f32(), i32(), f64(), 4, 4, 1], ints: [3, 4] },
  { fn: 'gradDropoutF32', args: () => [f32(), f32(), 8, 0.1, 7], ints: [2, 4] },
  { fn: 'gradAddScaledF32', args: () => [f32(), f32(), f32(), 8, 2], ints: [3] },
  { fn: 'gradScaleF32', args: () => [f32(), 8, 2], ints: [1] },
  { fn: 'gradSumSquaresF32', args: () => [f32(), 8, f64()], ints: [1] },
  { fn: 'gradAdamwF32', args: () => [f32(), f32(), f32(), f32(), 8, 1e-3, 0.9, 0.999, 1e-8, 0, 1, 1], ints: [4, 10] },
  { fn: 'q4QuantizeF32', args: () => [f32(), u8(), f32(), 128, 64, 0], ints: [3, 4, 5] },
  { fn: 'q4QuantizeBf16', args: () => [u16(), u8(), f32(), 128, 64, 1], ints: [3, 4, 5] },
  { fn: 'q8QuantizeF32', args: () => [f32(), sortedMap(), u8(), f32(), 128, 64], ints: [4, 5] },
  { fn: 'q4Dequantize', args: () => [weight(), f32()], ints: [] },
  { fn: 'q4Linear', args: () => [weight(), f32(), null, f32(), 2], ints: [4] },
  { fn: 'q4LinearBackward', args: () => [weight(), u16(), f32(), 2], ints: [3] },
];

const HOSTILE = [-1, 2 ** 31, 2 ** 31 - 1, 2 ** 40, 2 ** 53, 2 ** 62, 2 ** 63, NaN, Infinity, -Infinity];
const WEIGHT_FIELDS = ['N', 'K', 'blocksize', 'nestedBlocksize'] as const;
const STATUSES = new Set([0, 1, 2, 4]);

function call(addon: NativeAddon, fn: keyof NativeAddon, args: Arg[]): number {
  const f = addon[fn] as (...a: Arg[]) => unknown;
  const r = f.apply(addon, args);
  if (typeof r !== 'number') throw new Error(`${fn} returned ${String(r)}`);
  return r;
}

function emptyLike(a: Arg): Arg {
  if (a instanceof Float32Array) return new Float32Array(0);
  if (a instanceof Float64Array) return new Float64Array(0);
  if (a instanceof Uint16Array) return new Uint16Array(0);
  if (a instanceof Int32Array) return new Int32Array(0);
  if (a instanceof Uint8Array) return new Uint8Array(0);
  return a;
}

test('native: every entry point accepts a valid call and rejects hostile dims and empty buffers by status', (t) => {
  const addon = native();
  const problems: string[] = [];
  let calls = 0;
  for (const s of SPECS) {
    const ok = call(addon, s.fn, s.args());
    calls++;
    if (ok !== 0) problems.push(`${s.fn}: valid call returned ${ok}`);
    for (const i of s.ints) {
      for (const v of HOSTILE) {
        const args = s.args();
        args[i] = v;
        const st = call(addon, s.fn, args);
        calls++;
        if (!STATUSES.has(st)) problems.push(`${s.fn}: arg ${i} = ${v} returned ${st}`);
      }
    }
    const weightAt = s.args().findIndex((a) => a !== null && typeof a === 'object' && 'codes' in a);
    for (const field of weightAt < 0 ? [] : WEIGHT_FIELDS) {
      for (const v of HOSTILE) {
        const args = s.args();
        args[weightAt] = { ...weight(), [field]: v };
        const st = call(addon, s.fn, args);
        calls++;
        if (!STATUSES.has(st) || (v < 0 && Number.isFinite(v) && st === 0)) problems.push(`${s.fn}: weight.${field} = ${v} returned ${st}`);
      }
    }
    s.args().forEach((a, i) => {
      if (!ArrayBuffer.isView(a) || s.optional?.includes(i) === true) return;
      const args = s.args();
      args[i] = emptyLike(a);
      const st = call(addon, s.fn, args);
      calls++;
      if (st === 0 || !STATUSES.has(st)) problems.push(`${s.fn}: empty buffer at arg ${i} returned ${st}`);
    });
    if (weightAt >= 0) {
      for (const key of ['codes', 'map', 'nestedCodes', 'nestedAbsmax', 'nestedMap'] as const) {
        const args = s.args();
        const w = weight();
        args[weightAt] = { ...w, [key]: emptyLike(w[key]) };
        const st = call(addon, s.fn, args);
        calls++;
        if (st === 0 || !STATUSES.has(st)) problems.push(`${s.fn}: empty weight.${key} returned ${st}`);
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(calls > 500, `${calls} calls`);
  t.diagnostic(`native calls: ${calls} over ${SPECS.length} entry points`);
});

test('native: a 4-bit weight whose N * K overflows 64 bits is an argument error, not a wrapped size', () => {
  const addon = native();
  const w = { ...weight(), N: 2 ** 39, K: 2 ** 39 };
  assert.equal(addon.q4Dequantize(w, f32()), 2);
  assert.equal(addon.q4Linear({ ...weight(), N: 2 ** 39, K: 2 ** 39 }, f32(), null, f32(), 2), 2);
  // M * K past 2^40 elements is an argument error before any buffer is sized from it.
  assert.equal(addon.q4Linear(weight(), f32(), null, f32(), 2 ** 40 - 1), 2);
  assert.equal(addon.q4LinearBackward(weight(), f32(), f32(), 2 ** 39), 2);
});

// Under AddressSanitizer (scripts/asan.sh preloads libasan) the child cannot start inside
// the address-space limit at all: ASan reserves terabytes of shadow memory up front.
const underAsan = (process.env['LD_PRELOAD'] ?? '').includes('asan');

test('native: allocations past Node\'s buffer limit throw; ones the machine cannot hold return null instead of aborting', (t) => {
  const addon = native();
  assert.throws(() => addon.alloc(2 ** 52), /exceeds the largest buffer Node allows/);
  if (underAsan) {
    t.skip('the address-space-limited child cannot run under AddressSanitizer');
    return;
  }
  // Under a 3 GiB address-space limit a 4 GiB block cannot be mapped: malloc fails, the
  // pool trims and retries, and alloc returns null (Tensor turns that into ShapeError).
  const script = `const { native } = await import(${JSON.stringify(pathToFileURL(resolve('dist/src/backend/native/addon.js')).href)});
    const a = native();
    console.log(JSON.stringify([a.alloc(2 ** 32 - 64), a.alloc(1 << 20)?.byteLength]));`;
  const out = spawnSync('sh', ['-c', 'ulimit -v 3145728 && exec "$0" --input-type=module -e "$1"', process.execPath, script], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  assert.deepEqual(JSON.parse(out.stdout), [null, 1 << 20]);
});
