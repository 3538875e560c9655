// Building malformed inputs from real files for the bad-input and fuzz suites: temp
// copies of fixture directories, JSON field edits, byte flips, truncations and splices,
// a snapshot of a directory tree (to prove a failed run changed nothing), and the check
// that an outcome is success or a typed FtuneError.
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { FtuneError } from '../../src/errors.js';
import type { Rng } from './random.js';

/** A fresh temp directory; removed by the returned cleanup. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `ftune-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Copies directory `src` to `dst` (recursively; files become writable copies). */
export function copyDir(src: string, dst: string): string {
  cpSync(src, dst, { recursive: true });
  for (const f of listFiles(dst)) writeFileSync(join(dst, f), readFileSync(join(dst, f)));
  return dst;
}

/** Every file under `dir`, as paths relative to it, sorted. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** path -> sha256 of every file under `dir` (empty when dir is absent): equal snapshots mean nothing changed. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  try {
    statSync(dir);
  } catch {
    return out;
  }
  for (const f of listFiles(dir)) out.set(f, createHash('sha256').update(readFileSync(join(dir, f))).digest('hex'));
  return out;
}

export type JsonEdit = (json: Record<string, unknown>) => void;

/** Rewrites a JSON object file through `edit`. */
export function editJson(path: string, edit: JsonEdit): void {
  const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  edit(json);
  writeFileSync(path, JSON.stringify(json, null, 2));
}

/** Keeps the first `n` bytes of a file (n < 0: drops -n bytes from the end). */
export function truncateFile(path: string, n: number): void {
  const b = readFileSync(path);
  writeFileSync(path, b.subarray(0, n < 0 ? Math.max(0, b.length + n) : n));
}

/** Overwrites bytes at `offset` with `bytes`. */
export function patchBytes(path: string, offset: number, bytes: Uint8Array): void {
  const b = readFileSync(path);
  b.set(bytes, offset);
  writeFileSync(path, b);
}

/** A u64 little-endian value as 8 bytes. */
export function u64le(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

/** An i32 little-endian value as 4 bytes. */
export function i32le(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
}

/**
 * Rewrites a safetensors file's JSON header through `edit` (data bytes kept), padding the
 * header to a multiple of 8 like the reference writer.
 */
export function editSafetensorsHeader(path: string, edit: (header: Record<string, unknown>) => void): void {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  edit(header);
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Buffer.alloc(Math.ceil(json.length / 8) * 8, 0x20);
  json.copy(padded);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(padded.length));
  writeFileSync(path, Buffer.concat([len, padded, b.subarray(8 + n)]));
}

export type MutationKind = 'flip' | 'truncate' | 'splice' | 'zero-run' | 'dup-run';

export interface Mutation {
  kind: MutationKind;
  /** Human-readable description, printed with the seed when a case fails. */
  what: string;
  bytes: Uint8Array;
}

/**
 * One random mutation of `src`: byte flips, a truncation, a splice of a foreign chunk,
 * a zeroed run, or a duplicated run. `donor` supplies spliced bytes (another real file).
 */
export function mutate(rng: Rng, src: Uint8Array, donor: Uint8Array): Mutation {
  const kinds: MutationKind[] = ['flip', 'truncate', 'splice', 'zero-run', 'dup-run'];
  const kind = kinds[rng.int(kinds.length)] ?? 'flip';
  const n = src.length;
  // Half the mutations land in the first 4 KiB, where headers live and parsers branch.
  const pos = (): number => (rng.next() < 0.5 ? rng.int(Math.min(n, 4096)) : rng.int(Math.max(1, n)));
  if (kind === 'flip' || n === 0) {
    const out = src.slice();
    const count = 1 + rng.int(8);
    const at: number[] = [];
    for (let i = 0; i < count && n > 0; i++) {
      const p = pos();
      out[p] = (out[p] ?? 0) ^ (1 << rng.int(8));
      at.push(p);
    }
    return { kind: 'flip', what: `flip bits at ${at.join(',')}`, bytes: out };
  }
  if (kind === 'truncate') {
    const keep = pos();
    return { kind, what: `truncate to ${keep} of ${n} bytes`, bytes: src.slice(0, keep) };
  }
  if (kind === 'splice') {
    const at = pos();
    const from = rng.int(Math.max(1, donor.length));
    const len = 1 + rng.int(256);
    const chunk = donor.subarray(from, from + len);
    const drop = rng.int(len + 1);
    const out = new Uint8Array(n - Math.min(drop, n - at) + chunk.length);
    out.set(src.subarray(0, at));
    out.set(chunk, at);
    out.set(src.subarray(Math.min(n, at + drop)), at + chunk.length);
    return { kind, what: `splice ${chunk.length} donor bytes from ${from} at ${at}, dropping ${drop}`, bytes: out };
  }
  const at = pos();
  const len = 1 + rng.int(64);
  if (kind === 'zero-run') {
    const out = src.slice();
    out.fill(0, at, Math.min(n, at + len));
    return { kind, what: `zero ${len} bytes at ${at}`, bytes: out };
  }
  const run = src.subarray(at, Math.min(n, at + len));
  const out = new Uint8Array(n + run.length);
  out.set(src.subarray(0, at + run.length));
  out.set(run, at + run.length);
  out.set(src.subarray(at + run.length), at + 2 * run.length);
  return { kind, what: `duplicate ${run.length} bytes at ${at}`, bytes: out };
}

export type Outcome = { ok: true } | { ok: false; error: FtuneError };

/**
 * Runs fn and classifies the result: success, or a typed FtuneError whose message has a
 * hint. Anything else (TypeError, RangeError, a plain Error, a hint-less message) is
 * rethrown with `context` so the failing seed and mutation are printed.
 */
export function typedOutcome(fn: () => void, context: string): Outcome {
  try {
    fn();
    return { ok: true };
  } catch (e) {
    if (e instanceof FtuneError && /\nhint: \S/.test(e.message)) return { ok: false, error: e };
    const detail = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e);
    throw new Error(`untyped failure (${context}): ${detail}`);
  }
}

export type ErrorClass = abstract new (...args: never[]) => FtuneError;

/** One malformed input: how to break a fresh copy of the real file(s), and what must be thrown. */
export interface BadCase {
  name: string;
  /** Mutates the prepared temp dir (which `prepare` filled with real files). */
  build: (dir: string) => void;
  error: ErrorClass;
  /** Must match the message (which names the file/field/problem). */
  message: RegExp;
}

/**
 * Asserts that `load(dir)` throws `c.error` with a message matching `c.message` and a
 * non-empty hint. Returns the error for further checks.
 */
export function expectTyped(c: BadCase, load: () => unknown): FtuneError {
  let thrown: unknown;
  try {
    load();
  } catch (e) {
    thrown = e;
  }
  if (thrown === undefined) throw new Error(`${c.name}: no error was thrown`);
  if (!(thrown instanceof c.error)) {
    const got = thrown instanceof Error ? `${thrown.name}: ${thrown.message}\n${thrown.stack ?? ''}` : String(thrown);
    throw new Error(`${c.name}: expected ${c.error.name}, got ${got}`);
  }
  if (!c.message.test(thrown.message)) throw new Error(`${c.name}: message ${JSON.stringify(thrown.message)} does not match ${String(c.message)}`);
  if (!/\nhint: \S/.test(thrown.message)) throw new Error(`${c.name}: message has no hint: ${JSON.stringify(thrown.message)}`);
  return thrown;
}

/**
 * Runs every case on a fresh temp dir filled by `prepare`, collecting failures so one
 * run reports all broken cases; throws listing them. Returns the number of cases run.
 */
export function runCases(cases: readonly BadCase[], prepare: (dir: string) => void, load: (dir: string) => unknown): number {
  const failures: string[] = [];
  for (const c of cases) {
    const { dir, cleanup } = tempDir('bad');
    try {
      prepare(dir);
      c.build(dir);
      expectTyped(c, () => load(dir));
    } catch (e) {
      failures.push(e instanceof Error ? e.message.split('\n').slice(0, 3).join(' | ') : String(e));
    } finally {
      cleanup();
    }
  }
  if (failures.length > 0) throw new Error(`${failures.length} of ${cases.length} cases failed:\n${failures.join('\n')}`);
  return cases.length;
}
