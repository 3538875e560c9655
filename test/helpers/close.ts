// Element-wise closeness for parity tests of native ops against their float64 references.
import assert from 'node:assert/strict';

/** Asserts |actual - expected| <= atol + rtol |expected| element-wise (NaN must match NaN). */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] ?? NaN, e = expected[i] ?? NaN;
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) assert.fail(`${what}: index ${i}: native ${a} vs reference ${e}`);
  }
}
