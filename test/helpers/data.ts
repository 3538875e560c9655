// Shared fixtures: tests read ../shared/data (or FTUNE_TEST_DATA) where it is, never a
// copy. A missing fixture skips the test locally and fails it under CI=true.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TestContext } from 'node:test';

export const DATA_DIR = resolve(process.env['FTUNE_TEST_DATA'] ?? '../shared/data');

/**
 * Absolute path of a fixture under the data dir, or undefined (test skipped) when it is
 * missing outside CI. Under CI=true a missing fixture throws, failing the test.
 */
export function fixture(t: TestContext, ...parts: string[]): string | undefined {
  const path = resolve(DATA_DIR, ...parts);
  if (existsSync(path)) return path;
  if (process.env['CI'] === 'true') throw new Error(`fixture missing: ${path} (set FTUNE_TEST_DATA to the shared data dir)`);
  t.skip(`fixture missing: ${path}`);
  return undefined;
}

/** Like fixture() but for code that cannot skip: throws when missing. */
export function requireFixture(...parts: string[]): string {
  const path = resolve(DATA_DIR, ...parts);
  if (!existsSync(path)) throw new Error(`fixture missing: ${path} (set FTUNE_TEST_DATA to the shared data dir)`);
  return path;
}
