// Atomic file and directory writes: write to a hidden temp name in the target's directory,
// fsync, rename over the final name, then fsync the directory, so a crash or a throwing
// writer never leaves a partial file or directory under a final name (rename within one
// directory is atomic on POSIX filesystems). Leftover temp names carry the writer's pid
// and are removed by the next run (removeStaleTemps). See docs/crash-safety.md.
import { closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, rmdirSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { IoError } from '../errors.js';

/** Largest single writeSync/readSync call; Node caps one call at 2 GiB - 1. */
export const IO_CHUNK_BYTES = 1 << 30;

/** Writes all of `bytes` to fd (at `position`, or at the current offset when omitted), looping over partial writes. */
export function writeAllSync(fd: number, bytes: Uint8Array, position?: number): void {
  let done = 0;
  while (done < bytes.byteLength) {
    const len = Math.min(IO_CHUNK_BYTES, bytes.byteLength - done);
    const pos = position === undefined ? null : position + done;
    const n = writeSync(fd, bytes, done, len, pos);
    if (n <= 0) throw new IoError(`writeSync wrote ${n} bytes`, 'check free disk space and permissions');
    done += n;
  }
}

function errnoMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Creates or replaces `path` atomically: `writer` fills a fresh temp file (opened for
 * writing, offset 0) next to it; on success the temp file is fsynced and renamed over
 * `path`, on failure it is removed and the error rethrown. The directory must exist.
 */
export function writeFileAtomic(path: string, writer: (fd: number) => void): void {
  const dir = dirname(path);
  const tmp = tempPath(path);
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', 0o644);
  } catch (e) {
    throw new IoError(`cannot create ${tmp} to write ${path}: ${errnoMessage(e)}`,
      'check that the directory exists and is writable');
  }
  try {
    writer(fd);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // The temp file is already gone (rename may have happened); nothing left to clean.
    }
    throw e;
  }
  syncDir(dir);
}

/**
 * Temp and retired entries are hidden and carry the writer's pid:
 * `.<name>.tmp-<pid>[-<hex>]` (being built) and `.<name>.old-<pid>[-<hex>]` (being removed).
 * The pid lets a later run tell a dead writer's leftovers from a live writer's work.
 */
const TEMP_RE = /^\.(.+)\.(?:tmp|old)-(\d+)(?:-[0-9a-f]+)?$/;

/** A fresh hidden sibling name for `path`: `.<name>.<kind>-<pid>-<hex>` in the same directory. */
export function tempPath(path: string, kind: 'tmp' | 'old' = 'tmp'): string {
  return join(dirname(path), `.${basename(path)}.${kind}-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** fsyncs a directory so renames in it are durable; a no-op where directories cannot be opened (Windows). */
export function syncDir(dir: string): void {
  let fd = -1;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Best effort: some platforms refuse fsync on directories; the data files themselves are synced.
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

function isDir(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Removes a directory so that no crash leaves it half-deleted under its name: it is first
 * renamed to a hidden `.old-` sibling (atomic), the parent fsynced, then deleted.
 */
export function removeDirAtomic(dir: string): void {
  if (!existsSync(dir)) return;
  const old = tempPath(dir, 'old');
  renameSync(dir, old);
  syncDir(dirname(dir));
  rmSync(old, { recursive: true, force: true });
}

/**
 * Creates directory `final` atomically: `build` fills a hidden staging sibling; once it
 * returns, the staging directory is fsynced and renamed to `final` and the parent fsynced.
 * A throwing `build` (or a crash) never leaves anything under `final`. An existing empty
 * `final` is replaced; a non-empty one only with `replace` (it is retired with
 * removeDirAtomic's rename first, so `final` is always either the old or the new
 * complete directory, or briefly absent), else IoError.
 */
export function buildDirAtomic(final: string, build: (staging: string) => void, opts: { replace?: boolean } = {}): void {
  const parent = dirname(final);
  mkdirSync(parent, { recursive: true });
  const staging = tempPath(final);
  mkdirSync(staging);
  try {
    build(staging);
    syncDir(staging);
    if (existsSync(final)) {
      if (isDir(final) && readdirSync(final).length === 0) rmdirSync(final);
      else if (opts.replace === true) removeDirAtomic(final);
      else throw new IoError(`${final} already exists and is not empty`, 'choose a new output path; ftune does not overwrite existing outputs');
    }
    renameSync(staging, final);
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw e;
  }
  syncDir(parent);
}

/**
 * Writes a set of entries into the existing directory `dir` (a model or adapter next to
 * checkpoints): `build` fills a hidden staging directory inside `dir`, then each entry is
 * renamed over its final name (files atomically; a directory replaces the old one via
 * removeDirAtomic) and `dir` is fsynced. Every final name always holds a complete file.
 */
export function publishInto(dir: string, build: (staging: string) => void): void {
  mkdirSync(dir, { recursive: true });
  const staging = tempPath(join(dir, 'publish'));
  mkdirSync(staging);
  try {
    build(staging);
    syncDir(staging);
    for (const name of readdirSync(staging).sort()) {
      const target = join(dir, name);
      if (isDir(join(staging, name)) && existsSync(target)) removeDirAtomic(target);
      renameSync(join(staging, name), target);
    }
    syncDir(dir);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes the temp and retired entries (see TEMP_RE) that processes no longer alive left
 * in `dir` (not recursive); with `forName`, only those of that entry name. Returns the
 * names removed. Entries of live processes (another run writing here) are kept.
 */
export function removeStaleTemps(dir: string, forName?: string): string[] {
  if (!isDir(dir)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const m = TEMP_RE.exec(name);
    if (m === null || (forName !== undefined && m[1] !== forName) || pidAlive(Number(m[2]))) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  if (removed.length > 0) syncDir(dir);
  return removed;
}

/** True for names that removeStaleTemps treats as temp or retired entries. */
export function isTempName(name: string): boolean {
  return TEMP_RE.test(name);
}
