// Shared by every command that reads --model / --adapter: a Hub repo id (org/name or
// org/name@revision) is downloaded into the Hugging Face cache first, with a progress
// bar per file on stderr, and the commands then work on the snapshot directory. A local
// directory passes through untouched (and wins over a repo id of the same spelling).
import { isHubName, resolvePretrained, type DownloadProgress, type RepoKind } from '../../io/hub.js';
import type { CliIo } from '../command.js';

function mib(bytes: number): string {
  return bytes < 2 ** 20 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Renders DownloadProgress: redrawn in place on a terminal, one line per finished file elsewhere. */
export class DownloadBar {
  readonly #write: (text: string) => void;
  readonly #tty: boolean;
  #lastDraw = -1;

  constructor(write: (text: string) => void, tty: boolean) {
    this.#write = write;
    this.#tty = tty;
  }

  update(p: DownloadProgress): void {
    const name = `${p.repoId}/${p.file}`;
    if (!this.#tty) {
      if (p.done) this.#write(`downloaded ${name} (${mib(p.loaded)})\n`);
      return;
    }
    const frac = p.total !== undefined && p.total > 0 ? Math.min(1, p.loaded / p.total) : undefined;
    const step = frac === undefined ? Math.floor(p.loaded / 2 ** 20) : Math.floor(frac * 100);
    if (!p.done && step === this.#lastDraw) return;
    this.#lastDraw = p.done ? -1 : step;
    const width = 24;
    const filled = frac === undefined ? 0 : Math.round(frac * width);
    const bar = `${'='.repeat(filled)}${' '.repeat(width - filled)}`;
    const size = p.total === undefined ? mib(p.loaded) : `${mib(p.loaded)}/${mib(p.total)}`;
    this.#write(`\r${name} [${bar}] ${frac === undefined ? '' : `${Math.floor(frac * 100)}% `}${size}\x1b[K${p.done ? '\n' : ''}`);
  }
}

/** `value` as a local directory: a Hub repo id is fetched into the HF cache (if needed) and its snapshot dir returned. */
export async function hubModelDir(value: string, kind: RepoKind, io: CliIo): Promise<string> {
  if (!isHubName(value)) return value;
  const bar = new DownloadBar(io.stderr, process.stderr.isTTY === true);
  return resolvePretrained(value, { kind, onProgress: (p) => bar.update(p) });
}

/** An optional --adapter value resolved like --model (a PEFT adapter repo). */
export async function hubAdapterDir(value: unknown, io: CliIo): Promise<string | undefined> {
  return typeof value === 'string' ? hubModelDir(value, 'adapter', io) : undefined;
}
