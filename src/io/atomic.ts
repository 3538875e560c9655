// Atomic file writes: write to a temp file in the target's directory, fsync, then rename
// over the final name, so a crash or a throwing writer never leaves a partial file under
// the final name (rename within one directory is atomic on POSIX filesystems).
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
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
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
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

/** fsyncs a directory so the rename itself is durable; a no-op where directories cannot be opened (Windows). */
function syncDir(dir: string): void {
  let fd = -1;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Best effort: some platforms refuse fsync on directories; the data file itself is synced.
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}
