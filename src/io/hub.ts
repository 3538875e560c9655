// Hugging Face Hub downloads into the standard cache (see hub-cache.ts), following
// huggingface_hub's file_download.py: a HEAD on {endpoint}/{repo}/resolve/{rev}/{file}
// without following absolute redirects gives X-Repo-Commit, X-Linked-Etag / ETag and
// X-Linked-Size; the body is fetched from the redirect target (LFS/CDN) into
// blobs/<etag>.incomplete (resumed with a Range request when a partial one is there),
// renamed to blobs/<etag>, and linked from snapshots/<sha>/<file>. A snapshot that is
// already complete in the cache is used without any request.
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, renameSync, statSync, symlinkSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { ConfigError, IoError } from '../errors.js';
import {
  FILE_SETS, SINGLE_WEIGHTS, WEIGHTS_INDEX, cachedSnapshot, hubCacheDir, hubEndpoint, hubOffline, hubToken, isCommit,
  parseRepoRef, repoFolder, shardsOf, type HubEnv, type RepoKind, type RepoRef,
} from './hub-cache.js';

export { hubCacheDir, isHubName, parseRepoRef, type HubEnv, type RepoKind, type RepoRef } from './hub-cache.js';

/** One progress event of one file's download (library code never prints; the CLI renders these). */
export interface DownloadProgress {
  repoId: string;
  file: string;
  /** Bytes in the blob so far (a resumed download starts above 0). */
  loaded: number;
  /** File size when the Hub sent it. */
  total: number | undefined;
  done: boolean;
}

export interface HubOptions extends HubEnv {
  /** Branch, tag or commit sha (or write `org/name@rev`). Default main. */
  revision?: string;
  /** Which files to fetch. Default model. */
  kind?: RepoKind;
  onProgress?: (p: DownloadProgress) => void;
  /** For tests and proxies. Default the global fetch. */
  fetch?: typeof fetch;
}

interface FileMeta {
  commit: string;
  etag: string;
  size: number | undefined;
  /** Where the bytes are: the redirect target for LFS files, the resolve URL otherwise. */
  location: string;
}

const ETAG_TIMEOUT_MS = 10_000;

interface Session {
  ref: RepoRef;
  folder: string;
  endpoint: string;
  token: string | undefined;
  fetch: typeof fetch;
  onProgress: ((p: DownloadProgress) => void) | undefined;
}

function normEtag(e: string | null): string | undefined {
  if (e === null) return undefined;
  return e.replace(/^W\//, '').replace(/^"|"$/g, '');
}

function encodePath(file: string): string {
  return file.split('/').map(encodeURIComponent).join('/');
}

function checkRelative(file: string, repoId: string): void {
  if (file === '' || file.startsWith('/') || file.split(/[\\/]/).some((p) => p === '..' || p === '')) {
    throw new IoError(`${repoId}: refusing file name ${JSON.stringify(file)} (not a plain relative path)`, 'the repo index is malformed; report it to the repo owner');
  }
}

function netError(s: Session, url: string, e: unknown): IoError {
  const cause = e instanceof Error ? `${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}` : String(e);
  return new IoError(`${s.ref.repoId}: request to ${url} failed: ${cause}`,
    `check the network and HF_ENDPOINT (${s.endpoint}); set HF_HUB_OFFLINE=1 to use only what is cached in ${dirname(s.folder)}`);
}

function httpError(s: Session, file: string, res: Response): IoError {
  const code = res.headers.get('x-error-code') ?? '';
  const what = `${s.ref.repoId}@${s.ref.revision}: ${file}: HTTP ${res.status}${code !== '' ? ` ${code}` : ''}`;
  if (code === 'RepositoryNotFound' || res.status === 401 || res.status === 403) {
    return new IoError(`${what} (the repo does not exist, or it is private or gated)`,
      `check the repo id (or, if you meant a local model, the directory path: ${s.ref.repoId} does not exist); for a private or gated repo set HF_TOKEN to a token with read access${s.token === undefined ? ' (none is set)' : ''}`);
  }
  if (code === 'RevisionNotFound') return new IoError(what, `revision ${s.ref.revision} does not exist; use a branch, tag or commit sha of ${s.ref.repoId}`);
  return new IoError(what, 'retry later; if it persists, check HF_ENDPOINT and the repo on the Hub');
}

function authHeaders(s: Session, url: string): Record<string, string> {
  // The token goes to the Hub only, never to a CDN the Hub redirects to.
  return s.token !== undefined && new URL(url).origin === new URL(s.endpoint).origin ? { authorization: `Bearer ${s.token}` } : {};
}

/** HEAD on the resolve URL; undefined when the Hub says the file is absent. */
async function fileMeta(s: Session, revision: string, file: string): Promise<FileMeta | undefined> {
  let url = `${s.endpoint}/${s.ref.repoId}/resolve/${encodeURIComponent(revision)}/${encodePath(file)}`;
  for (let hop = 0; hop < 5; hop++) {
    let res: Response;
    try {
      res = await s.fetch(url, { method: 'HEAD', redirect: 'manual', headers: { ...authHeaders(s, url), 'accept-encoding': 'identity' }, signal: AbortSignal.timeout(ETAG_TIMEOUT_MS) });
    } catch (e) {
      throw netError(s, url, e);
    }
    const location = res.headers.get('location');
    // Relative redirects (renamed repos) are followed; absolute ones (LFS, CDN) end the HEAD.
    if (res.status >= 300 && res.status < 400 && location !== null && location.startsWith('/')) {
      url = new URL(location, url).href;
      continue;
    }
    if (res.status === 404 && (res.headers.get('x-error-code') ?? 'EntryNotFound') === 'EntryNotFound') return undefined;
    if (!res.ok && !(res.status >= 300 && res.status < 400)) throw httpError(s, file, res);
    const commit = res.headers.get('x-repo-commit');
    const etag = normEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag'));
    if (commit === null || !isCommit(commit) || etag === undefined || etag === '' || /[\\/]/.test(etag)) {
      throw new IoError(`${s.ref.repoId}: ${file}: the server sent no valid X-Repo-Commit / ETag headers`,
        `is HF_ENDPOINT (${s.endpoint}) a Hugging Face Hub or a mirror of one? A proxy may be stripping headers`);
    }
    const size = Number(res.headers.get('x-linked-size') ?? res.headers.get('content-length') ?? NaN);
    return { commit, etag, size: Number.isFinite(size) ? size : undefined, location: location === null ? url : new URL(location, url).href };
  }
  throw new IoError(`${s.ref.repoId}: ${file}: too many redirects`, 'check HF_ENDPOINT');
}

/** Streams meta.location into blobs/<etag> via <etag>.incomplete, resuming a partial file. */
async function downloadBlob(s: Session, file: string, meta: FileMeta, blob: string): Promise<void> {
  const partial = `${blob}.incomplete`;
  let start = existsSync(partial) ? statSync(partial).size : 0;
  const emit = (loaded: number, done: boolean): void => s.onProgress?.({ repoId: s.ref.repoId, file, loaded, total: meta.size, done });
  if (meta.size === undefined || start < meta.size) {
    let res: Response;
    try {
      res = await s.fetch(meta.location, { headers: { ...authHeaders(s, meta.location), 'accept-encoding': 'identity', ...(start > 0 ? { range: `bytes=${start}-` } : {}) } });
    } catch (e) {
      throw netError(s, meta.location, e);
    }
    if (!res.ok) throw httpError(s, file, res);
    if (res.status !== 206) start = 0;
    const fd = openSync(partial, start > 0 ? 'a' : 'w');
    let loaded = start;
    emit(loaded, false);
    try {
      if (res.body !== null) {
        for await (const chunk of res.body) {
          const bytes = chunk instanceof Uint8Array ? chunk : new Uint8Array(0);
          for (let off = 0; off < bytes.byteLength;) off += writeSync(fd, bytes, off, bytes.byteLength - off);
          loaded += bytes.byteLength;
          emit(loaded, false);
        }
      }
    } catch (e) {
      throw new IoError(`${s.ref.repoId}: ${file}: download interrupted at ${loaded} bytes: ${e instanceof Error ? e.message : String(e)}`,
        `run the command again: it resumes from ${partial}`);
    } finally {
      closeSync(fd);
    }
  }
  const got = statSync(partial).size;
  if (meta.size !== undefined && got !== meta.size) {
    if (got > meta.size) unlinkSync(partial);
    throw new IoError(`${s.ref.repoId}: ${file}: got ${got} bytes, the Hub announced ${meta.size}`, 'run the command again to resume or restart the download');
  }
  renameSync(partial, blob);
  emit(got, true);
}

/** snapshots/<sha>/<file> -> ../../blobs/<etag> (a copy where symlinks are not allowed). */
function linkPointer(blob: string, pointer: string): void {
  mkdirSync(dirname(pointer), { recursive: true });
  if (existsSync(pointer)) unlinkSync(pointer);
  try {
    symlinkSync(relative(dirname(pointer), blob), pointer);
  } catch {
    copyFileSync(blob, pointer);
  }
}

/** The commit a download is pinned to: unknown until the first resolve answers. */
interface Pin {
  sha: string | undefined;
}

/** Fetches one file into the cache at the pinned commit; false when the Hub says it does not exist. */
async function fetchFile(s: Session, pin: Pin, file: string): Promise<boolean> {
  checkRelative(file, s.ref.repoId);
  if (pin.sha !== undefined && existsSync(join(s.folder, 'snapshots', pin.sha, file))) return true;
  const meta = await fileMeta(s, pin.sha ?? s.ref.revision, file);
  if (meta !== undefined) pin.sha ??= meta.commit;
  const sha = pin.sha;
  if (sha === undefined) return false;
  if (meta === undefined) {
    // Recorded like huggingface_hub does, so a later load knows without asking.
    const marker = join(s.folder, '.no_exist', sha, file);
    mkdirSync(dirname(marker), { recursive: true });
    writeFileSync(marker, '');
    return false;
  }
  const blob = join(s.folder, 'blobs', meta.etag);
  mkdirSync(dirname(blob), { recursive: true });
  if (!existsSync(blob)) await downloadBlob(s, file, meta, blob);
  linkPointer(blob, join(s.folder, 'snapshots', sha, file));
  return true;
}

function writeRef(s: Session, sha: string): void {
  if (s.ref.revision === sha) return;
  const ref = join(s.folder, 'refs', s.ref.revision);
  mkdirSync(dirname(ref), { recursive: true });
  const tmp = `${ref}.tmp-${process.pid}`;
  writeFileSync(tmp, sha);
  renameSync(tmp, ref);
}

function offlineError(ref: RepoRef, kind: RepoKind, cacheDir: string): IoError {
  return new IoError(`${ref.repoId}@${ref.revision} is not in the Hugging Face cache ${cacheDir} (HF_HUB_OFFLINE is set, so nothing is downloaded)`,
    `unset HF_HUB_OFFLINE to download it, or point HF_HUB_CACHE / HF_HOME at a cache that holds the ${kind} files`);
}

/**
 * Makes `repoId` (`org/name` or `org/name@rev`) complete for `kind` in the HF cache and
 * returns its snapshot dir. A complete cached snapshot costs no request; offline, a
 * missing one is an IoError naming the repo and the cache dir.
 */
export async function snapshotDownload(repoId: string, opts: HubOptions = {}): Promise<string> {
  const ref = parseRepoRef(repoId, opts.revision);
  if (ref === undefined) throw new ConfigError(`${JSON.stringify(repoId)} is not a Hub repo id`, 'write it as org/name or org/name@revision');
  const kind = opts.kind ?? 'model';
  const cached = cachedSnapshot(ref, kind, opts);
  if (cached !== undefined) return cached;
  const cacheDir = hubCacheDir(opts);
  if (hubOffline(opts)) throw offlineError(ref, kind, cacheDir);
  const s: Session = {
    ref, folder: repoFolder(cacheDir, ref.repoId), endpoint: hubEndpoint(opts), token: hubToken(opts),
    fetch: opts.fetch ?? fetch, onProgress: opts.onProgress,
  };
  const set = FILE_SETS[kind];
  // The first file pins the commit (X-Repo-Commit); all others are fetched at that sha.
  const pin: Pin = { sha: isCommit(ref.revision) ? ref.revision : undefined };
  for (const file of set.required) {
    if (!(await fetchFile(s, pin, file))) {
      throw new IoError(`${ref.repoId}@${ref.revision} has no ${file}`, kind === 'model' && file === 'config.json'
        ? 'this is not a Transformers model repo (a PEFT adapter repo goes in --adapter)' : `check that ${ref.repoId} is a ${kind} repo`);
    }
  }
  for (const file of set.optional) await fetchFile(s, pin, file);
  if (set.weights && !(await fetchFile(s, pin, SINGLE_WEIGHTS))) {
    if (!(await fetchFile(s, pin, WEIGHTS_INDEX))) {
      throw new IoError(`${ref.repoId}@${ref.revision} has neither ${SINGLE_WEIGHTS} nor ${WEIGHTS_INDEX}`, 'ftune reads safetensors only; pick a repo with safetensors weights (pytorch_model.bin is not read)');
    }
    for (const shard of shardsOf(join(s.folder, 'snapshots', pin.sha ?? '', WEIGHTS_INDEX))) {
      if (!(await fetchFile(s, pin, shard))) throw new IoError(`${ref.repoId}@${ref.revision}: ${WEIGHTS_INDEX} names ${shard}, which the repo lacks`, 'the repo is broken; report it to its owner');
    }
  }
  if (pin.sha === undefined) throw new IoError(`${ref.repoId}@${ref.revision}: no commit sha from the Hub`, 'check HF_ENDPOINT');
  writeRef(s, pin.sha);
  return join(s.folder, 'snapshots', pin.sha);
}

/** A local directory as is; a Hub repo id -> its snapshot dir, downloaded into the cache when needed. */
export async function resolvePretrained(nameOrDir: string, opts: HubOptions = {}): Promise<string> {
  if (existsSync(nameOrDir) || parseRepoRef(nameOrDir) === undefined) return nameOrDir;
  return snapshotDownload(nameOrDir, opts);
}

/**
 * The synchronous half: a local directory, or a Hub repo id already complete in the
 * cache; never downloads (IoError when the repo is not cached). Other strings come back
 * unchanged, so the loader reports them as missing directories.
 */
export function resolvePretrainedSync(nameOrDir: string, opts: HubEnv & { revision?: string; kind?: RepoKind } = {}): string {
  if (existsSync(nameOrDir)) return nameOrDir;
  const ref = parseRepoRef(nameOrDir, opts.revision);
  if (ref === undefined) return nameOrDir;
  const kind = opts.kind ?? 'model';
  const dir = cachedSnapshot(ref, kind, opts);
  if (dir !== undefined) return dir;
  if (hubOffline(opts)) throw offlineError(ref, kind, hubCacheDir(opts));
  throw new IoError(`${nameOrDir} is not a local directory, and the Hub repo ${ref.repoId}@${ref.revision} is not in the cache ${hubCacheDir(opts)}`,
    'download it first with the async loader (await AutoModelForCausalLM.fromPretrainedAsync(name) or resolvePretrained(name)), or run any ftune command with --model NAME');
}
