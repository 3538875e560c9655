// Hugging Face checkpoint directories: one `model.safetensors`, or shards
// `model-0000k-of-0000n.safetensors` listed by `model.safetensors.index.json`
// ({"metadata":{"total_size":N},"weight_map":{tensor: file}}). The reader validates the
// index against the shards; the writer splits like huggingface_hub
// `split_torch_state_dict_into_shards` and writes the index like transformers
// `save_pretrained` (json.dumps(indent=2, sort_keys=True) + "\n").
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError, IoError } from '../errors.js';
import { writeAllSync, writeFileAtomic } from './atomic.js';
import { compareCodePoints, dataByteLength } from './safetensors-header.js';
import { SafetensorsFile, writeSafetensors, type TensorInfo, type TensorToWrite } from './safetensors.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
/** transformers' default max_shard_size ("5GB", decimal). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;
const SHARD_RE = /^model-\d{5}-of-\d{5}\.safetensors$/;

function shardName(k: number, n: number): string {
  return `model-${String(k).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses the index's weight_map; FormatError naming the index file otherwise. */
function readWeightMap(indexPath: string): Map<string, string> {
  let root: unknown;
  try {
    root = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new FormatError(`${indexPath}: not valid JSON (${e instanceof Error ? e.message : String(e)})`,
      'the index is corrupt; re-download the checkpoint or re-save it');
  }
  const wm = isPlainObject(root) ? root['weight_map'] : undefined;
  if (!isPlainObject(wm)) {
    throw new FormatError(`${indexPath}: missing "weight_map" object`, 'expected {"metadata":{"total_size":N},"weight_map":{tensor: file}}');
  }
  const out = new Map<string, string>();
  for (const [name, file] of Object.entries(wm)) {
    if (typeof file !== 'string' || file === '' || file === '.' || file === '..' || /[/\\]/.test(file)) {
      throw new FormatError(`${indexPath}: weight_map entry for tensor ${JSON.stringify(name)} is ${JSON.stringify(file)}, not a file name in the directory`,
        'weight_map values must be shard file names such as model-00001-of-00002.safetensors');
    }
    out.set(name, file);
  }
  return out;
}

/** A checkpoint directory's tensors, read lazily from one or more safetensors files. */
export class CheckpointDir {
  readonly dir: string;
  /** The index file for a sharded checkpoint, undefined for a single model.safetensors. */
  readonly indexPath: string | undefined;
  readonly #files: Map<string, SafetensorsFile>;
  readonly #where: Map<string, SafetensorsFile>;

  private constructor(dir: string, indexPath: string | undefined, files: Map<string, SafetensorsFile>, where: Map<string, SafetensorsFile>) {
    this.dir = dir;
    this.indexPath = indexPath;
    this.#files = files;
    this.#where = where;
  }

  /** Opens `dir`: model.safetensors when present (as transformers prefers it), else the sharded index. */
  static open(dir: string): CheckpointDir {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new IoError(`checkpoint directory ${dir} does not exist`, 'pass the directory that holds model.safetensors or model.safetensors.index.json');
    }
    const single = join(dir, SINGLE_FILE);
    if (existsSync(single)) {
      const f = SafetensorsFile.open(single);
      return new CheckpointDir(dir, undefined, new Map([[SINGLE_FILE, f]]), new Map([...f.tensors.keys()].map((k) => [k, f])));
    }
    const indexPath = join(dir, INDEX_FILE);
    if (!existsSync(indexPath)) {
      const found = readdirSync(dir).sort();
      const shown = found.slice(0, 20).join(', ') + (found.length > 20 ? `, ... (${found.length} entries)` : '');
      throw new FormatError(`${dir}: no ${SINGLE_FILE} or ${INDEX_FILE} (found: ${shown || 'nothing'})`,
        `a Hugging Face checkpoint needs ${SINGLE_FILE}, or ${INDEX_FILE} with its shards; PyTorch .bin checkpoints must be converted to safetensors first`);
    }
    return CheckpointDir.#openSharded(dir, indexPath);
  }

  static #openSharded(dir: string, indexPath: string): CheckpointDir {
    const weightMap = readWeightMap(indexPath);
    const files = new Map<string, SafetensorsFile>();
    const where = new Map<string, SafetensorsFile>();
    try {
      for (const [name, file] of weightMap) {
        let f = files.get(file);
        if (f === undefined) {
          const p = join(dir, file);
          if (!existsSync(p)) {
            throw new FormatError(`${indexPath}: tensor ${JSON.stringify(name)} is mapped to ${file}, which does not exist`,
              'the checkpoint is incomplete; download every shard listed in the index');
          }
          f = SafetensorsFile.open(p);
          files.set(file, f);
        }
        if (!f.tensors.has(name)) {
          throw new FormatError(`${indexPath}: tensor ${JSON.stringify(name)} is mapped to ${file}, but that file does not hold it`,
            'the index does not match its shards; re-download the checkpoint');
        }
        where.set(name, f);
      }
      for (const [file, f] of files) {
        for (const name of f.tensors.keys()) {
          const mapped = weightMap.get(name);
          if (mapped !== file) {
            throw new FormatError(`${indexPath}: ${file} holds tensor ${JSON.stringify(name)}, which the index ${mapped === undefined ? 'does not list' : `maps to ${mapped}`}`,
              'the index does not match its shards; re-download the checkpoint');
          }
        }
      }
    } catch (e) {
      for (const f of files.values()) f.close();
      throw e;
    }
    return new CheckpointDir(dir, indexPath, files, where);
  }

  /** Tensor names: file data order for a single file, weight_map order for shards. */
  names(): string[] {
    return [...this.#where.keys()];
  }

  has(name: string): boolean {
    return this.#where.has(name);
  }

  #file(name: string): SafetensorsFile {
    const f = this.#where.get(name);
    if (f === undefined) {
      throw new FormatError(`${this.dir}: no tensor named ${JSON.stringify(name)} in the checkpoint (${this.#where.size} tensors)`,
        'check the tensor name against names(); the checkpoint may be for a different architecture');
    }
    return f;
  }

  /** The tensor's info plus the path of the file that holds it. */
  info(name: string): TensorInfo & { file: string } {
    const f = this.#file(name);
    return { ...f.info(name), file: f.path };
  }

  read(name: string): Uint8Array {
    return this.#file(name).read(name);
  }

  readInto(name: string, target: Uint8Array): void {
    this.#file(name).readInto(name, target);
  }

  close(): void {
    for (const f of this.#files.values()) f.close();
  }
}

/** Splits tensors in order into shards of at most maxShardBytes (huggingface_hub's rule: an oversized tensor gets its own shard). */
export function planShards(tensors: readonly TensorToWrite[], maxShardBytes: number): TensorToWrite[][] {
  const shards: TensorToWrite[][] = [];
  let cur: TensorToWrite[] = [];
  let curBytes = 0;
  for (const t of tensors) {
    const size = dataByteLength(t);
    if (size > maxShardBytes) {
      shards.push([t]);
      continue;
    }
    if (curBytes + size > maxShardBytes) {
      shards.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(t);
    curBytes += size;
  }
  if (cur.length > 0) shards.push(cur);
  return shards;
}

/** JSON string as Python's json.dumps writes it (ensure_ascii: non-ASCII and DEL as \uXXXX). */
function pyJsonString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The index file text, as transformers writes it: json.dumps(index, indent=2, sort_keys=True) + "\n". */
export function formatIndexJson(totalSize: number, weightMap: ReadonlyMap<string, string>): string {
  const names = [...weightMap.keys()].sort(compareCodePoints);
  const rows = names.map((n) => `    ${pyJsonString(n)}: ${pyJsonString(weightMap.get(n) ?? '')}`);
  const wm = rows.length === 0 ? '{}' : `{\n${rows.join(',\n')}\n  }`;
  return `{\n  "metadata": {\n    "total_size": ${totalSize}\n  },\n  "weight_map": ${wm}\n}\n`;
}

export interface ShardedWriteOptions {
  /** Largest shard's tensor bytes (default 5 GB, as transformers). */
  maxShardBytes?: number;
}

export interface ShardedWriteResult {
  /** Safetensors file names written, in shard order. */
  files: string[];
  /** Index file name when sharded. */
  index: string | undefined;
}

/**
 * Writes tensors into `dir` (created if needed) as model.safetensors when they fit one
 * shard, else as model-0000k-of-0000n.safetensors + model.safetensors.index.json. Each
 * file is written atomically with metadata {"format":"pt"}; files of an earlier save that
 * would shadow or confuse this one (stale shards, index, single file) are removed.
 */
export function writeShardedCheckpoint(dir: string, tensors: readonly TensorToWrite[], options: ShardedWriteOptions = {}): ShardedWriteResult {
  const max = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(max > 0)) throw new FormatError(`writeShardedCheckpoint: maxShardBytes ${max} must be positive`, 'pass a positive byte count such as 5_000_000_000');
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new IoError(`cannot create checkpoint directory ${dir}: ${e instanceof Error ? e.message : String(e)}`, 'check the path and permissions');
  }
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new FormatError(`${dir}: duplicate tensor name ${JSON.stringify(t.name)}`, 'tensor names must be unique');
    seen.add(t.name);
  }
  const shards = planShards(tensors, max);
  const files = shards.length <= 1 ? [SINGLE_FILE] : shards.map((_, i) => shardName(i + 1, shards.length));
  const weightMap = new Map<string, string>();
  let total = 0;
  (shards.length === 0 ? [[]] : shards).forEach((shard, i) => {
    const file = files[i] ?? SINGLE_FILE;
    writeSafetensors(join(dir, file), shard, { format: 'pt' });
    for (const t of shard) {
      weightMap.set(t.name, file);
      total += dataByteLength(t);
    }
  });
  let index: string | undefined;
  if (files.length > 1) {
    index = INDEX_FILE;
    const text = new TextEncoder().encode(formatIndexJson(total, weightMap));
    writeFileAtomic(join(dir, INDEX_FILE), (fd) => writeAllSync(fd, text));
  }
  const keep = new Set([...files, ...(index === undefined ? [] : [index])]);
  for (const f of readdirSync(dir)) {
    if ((f === SINGLE_FILE || f === INDEX_FILE || SHARD_RE.test(f)) && !keep.has(f)) unlinkSync(join(dir, f));
  }
  return { files, index };
}
