// The Hugging Face Hub cache as huggingface_hub lays it out, read without the network:
// <cache>/models--org--name/{refs/<revision> (a commit sha), blobs/<etag>,
// snapshots/<sha>/<file> -> ../../blobs/<etag>, .no_exist/<sha>/<file> (files the Hub
// said are absent)}. The environment (HF_HUB_CACHE, HF_HOME, HF_ENDPOINT, HF_TOKEN,
// HF_HUB_OFFLINE) is read here, once per call, so tests can point it at a temp dir.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { getHFHubCachePath, getRepoFolderName } from '@huggingface/hub';
import { ConfigError } from '../errors.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
const COMMIT_RE = /^[0-9a-f]{40}$/;
// org/name: the Hub's rule (letters, digits, '-', '_', '.'; no '--' or '..' at the ends).
const REPO_ID_RE = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;

/** What a repo must hold: `model` (config, weights, tokenizer), `adapter` (PEFT) or `tokenizer` only. */
export type RepoKind = 'model' | 'adapter' | 'tokenizer';

export interface FileSet {
  required: readonly string[];
  optional: readonly string[];
  /** model.safetensors, or model.safetensors.index.json and the shards it names. */
  weights: boolean;
}

const TOKENIZER_OPTIONAL = ['tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja'] as const;

export const FILE_SETS: Readonly<Record<RepoKind, FileSet>> = {
  model: { required: ['config.json'], optional: ['generation_config.json', 'tokenizer.json', ...TOKENIZER_OPTIONAL], weights: true },
  adapter: { required: ['adapter_config.json', 'adapter_model.safetensors'], optional: [], weights: false },
  tokenizer: { required: ['tokenizer.json'], optional: TOKENIZER_OPTIONAL, weights: false },
};

export const SINGLE_WEIGHTS = 'model.safetensors';
export const WEIGHTS_INDEX = 'model.safetensors.index.json';

export interface RepoRef {
  repoId: string;
  revision: string;
}

/** Settings taken from the environment unless given. */
export interface HubEnv {
  /** Default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Default: $HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Default: $HF_TOKEN, else the token file $HF_HOME/token (written by `hf auth login`). */
  token?: string;
  /** Use the cache only. Default: $HF_HUB_OFFLINE is 1/true/yes/on. */
  offline?: boolean;
}

export function hubCacheDir(env: HubEnv = {}): string {
  return env.cacheDir ?? getHFHubCachePath();
}

export function hubEndpoint(env: HubEnv = {}): string {
  const e = env.endpoint ?? process.env['HF_ENDPOINT'] ?? DEFAULT_ENDPOINT;
  return e.replace(/\/+$/, '');
}

export function hubToken(env: HubEnv = {}): string | undefined {
  if (env.token !== undefined) return env.token === '' ? undefined : env.token;
  const t = process.env['HF_TOKEN'] ?? process.env['HUGGING_FACE_HUB_TOKEN'];
  if (t !== undefined && t !== '') return t;
  const home = process.env['HF_HOME'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'huggingface');
  const file = process.env['HF_TOKEN_PATH'] ?? join(home, 'token');
  if (!existsSync(file)) return undefined;
  const fromFile = readFileSync(file, 'utf8').trim();
  return fromFile === '' ? undefined : fromFile;
}

export function hubOffline(env: HubEnv = {}): boolean {
  if (env.offline !== undefined) return env.offline;
  return ['1', 'ON', 'YES', 'TRUE'].includes((process.env['HF_HUB_OFFLINE'] ?? '').toUpperCase());
}

/**
 * `org/name` or `org/name@revision` -> the repo and revision (default main); undefined
 * when the string is not shaped like a repo id (a local path, a bare name).
 */
export function parseRepoRef(name: string, revision?: string): RepoRef | undefined {
  const at = name.indexOf('@');
  const repoId = at < 0 ? name : name.slice(0, at);
  const rev = at < 0 ? undefined : name.slice(at + 1);
  if (!REPO_ID_RE.test(repoId) || repoId.includes('..') || repoId.includes('--')) return undefined;
  if (rev !== undefined && (rev === '' || rev.includes('..') || /\s/.test(rev))) {
    throw new ConfigError(`${JSON.stringify(name)}: the revision after "@" is not valid`, 'write org/name@main, org/name@v1.0 or org/name@<commit sha>');
  }
  if (rev !== undefined && revision !== undefined && rev !== revision) {
    throw new ConfigError(`${JSON.stringify(name)} names revision ${rev} but revision ${revision} was also given`, 'give the revision once');
  }
  return { repoId, revision: rev ?? revision ?? 'main' };
}

/** True when `name` is not an existing path and looks like org/name[@rev]. */
export function isHubName(name: string): boolean {
  return !existsSync(name) && parseRepoRef(name) !== undefined;
}

export function repoFolder(cacheDir: string, repoId: string): string {
  return join(cacheDir, getRepoFolderName({ name: repoId, type: 'model' }));
}

export function isCommit(revision: string): boolean {
  return COMMIT_RE.test(revision);
}

/** The commit a revision points at in the cache (refs/<revision>), or the revision itself if it is a sha. */
export function cachedCommit(folder: string, revision: string): string | undefined {
  if (isCommit(revision)) return revision;
  const ref = join(folder, 'refs', revision);
  if (!existsSync(ref)) return undefined;
  const sha = readFileSync(ref, 'utf8').trim();
  return isCommit(sha) ? sha : undefined;
}

/** Shard file names listed by an index's weight_map (validated as plain relative names). */
export function shardsOf(indexPath: string): string[] {
  let root: unknown;
  try {
    root = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch {
    return [];
  }
  const wm = root !== null && typeof root === 'object' ? (root as Record<string, unknown>)['weight_map'] : undefined;
  if (wm === null || typeof wm !== 'object') return [];
  const names = new Set<string>();
  for (const v of Object.values(wm)) if (typeof v === 'string') names.add(v);
  return [...names].sort();
}

/** Is `file` of snapshot `sha` settled in the cache: present, or recorded as absent? */
function settled(folder: string, sha: string, file: string): boolean {
  return existsSync(join(folder, 'snapshots', sha, file)) || existsSync(join(folder, '.no_exist', sha, file));
}

/** True when snapshots/<sha> holds everything `kind` needs (weights included). */
export function snapshotComplete(folder: string, sha: string, kind: RepoKind): boolean {
  const set = FILE_SETS[kind];
  const snap = join(folder, 'snapshots', sha);
  if (!set.required.every((f) => existsSync(join(snap, f)))) return false;
  if (!set.optional.every((f) => settled(folder, sha, f))) return false;
  if (!set.weights || existsSync(join(snap, SINGLE_WEIGHTS))) return true;
  const index = join(snap, WEIGHTS_INDEX);
  if (!existsSync(index)) return false;
  const shards = shardsOf(index);
  return shards.length > 0 && shards.every((f) => existsSync(join(snap, f)));
}

/** The snapshot dir of `ref` when it is complete for `kind` in the cache, else undefined. Never touches the network. */
export function cachedSnapshot(ref: RepoRef, kind: RepoKind, env: HubEnv = {}): string | undefined {
  const folder = repoFolder(hubCacheDir(env), ref.repoId);
  const sha = cachedCommit(folder, ref.revision);
  if (sha === undefined || !snapshotComplete(folder, sha, kind)) return undefined;
  return join(folder, 'snapshots', sha);
}
