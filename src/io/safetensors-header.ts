// safetensors header: dtype table, header validation (reader) and canonical header bytes
// (writer). Layout: u64 LE N | N bytes UTF-8 JSON | data. Rules follow the reference Rust
// crate (huggingface/safetensors safetensors/src/tensor.rs), summarised in
// reference/formats-and-features.md §2.1.
import { FormatError, ShapeError } from '../errors.js';
import { JsonParseError, parseStrictJson, type JsonObject, type JsonValue } from './safetensors-json.js';

/** Dtype names in the reference enum order, which is also the writer's alignment order. */
export const SAFETENSORS_DTYPES = [
  'BOOL', 'F4', 'F6_E2M3', 'F6_E3M2', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F8_E4M3FNUZ',
  'F8_E5M2FNUZ', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'C64', 'F64', 'I64', 'U64',
] as const;
export type SafetensorsDType = (typeof SAFETENSORS_DTYPES)[number];

/** Bits per element (tensor.rs `Dtype::bitsize`). */
export const DTYPE_BITS: Readonly<Record<SafetensorsDType, number>> = {
  BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8,
  F8_E4M3FNUZ: 8, F8_E5M2FNUZ: 8, I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32,
  C64: 64, F64: 64, I64: 64, U64: 64,
};

const DTYPE_RANK = new Map<string, number>(SAFETENSORS_DTYPES.map((d, i) => [d, i]));

export function isSafetensorsDType(s: string): s is SafetensorsDType {
  return DTYPE_RANK.has(s);
}

/** One tensor of a safetensors file; begin/end are byte offsets within the data section (end exclusive). */
export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** N, the JSON header's length in bytes (padding included). */
  headerLength: number;
  /** Absolute file offset of the data section: 8 + N. */
  dataStart: number;
  metadata: Record<string, string> | undefined;
  /** Tensors in data-offset order. */
  tensors: Map<string, TensorInfo>;
}

/** Reference MAX_HEADER_SIZE (tensor.rs L10). */
export const MAX_HEADER_SIZE = 100_000_000;

const HINT_CORRUPT = 'the file is corrupt, truncated or not a safetensors file; re-download or re-export it';

function fail(path: string, problem: string, hint = HINT_CORRUPT): never {
  throw new FormatError(`${path}: ${problem}`, hint);
}

/** Byte size of a tensor as a bigint, or a problem string when sub-byte elements do not end on a byte. */
export function tensorByteSize(dtype: SafetensorsDType, shape: readonly (number | bigint)[]): bigint | string {
  let numel = 1n;
  for (const d of shape) numel *= BigInt(d);
  const bits = numel * BigInt(DTYPE_BITS[dtype]);
  if (bits % 8n !== 0n) return `${numel} elements of ${dtype} (${DTYPE_BITS[dtype]} bits) do not end on a byte boundary`;
  return bits / 8n;
}

/** Compares strings by Unicode code point, i.e. as Rust compares String (UTF-8 bytes). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i) ?? 0;
    const y = b.codePointAt(i) ?? 0;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** Parses one header entry; throws naming the tensor. */
function parseEntry(path: string, name: string, v: JsonValue): { info: TensorInfo; begin: bigint; end: bigint } {
  const where = `tensor ${JSON.stringify(name)}`;
  if (!(v instanceof Map)) fail(path, `${where}: entry is not a JSON object`);
  const dtype = v.get('dtype');
  const shape = v.get('shape');
  const offsets = v.get('data_offsets');
  for (const [field, val] of [['dtype', dtype], ['shape', shape], ['data_offsets', offsets]] as const) {
    if (val === undefined) fail(path, `${where}: missing field "${field}"`);
  }
  if (typeof dtype !== 'string') fail(path, `${where}: "dtype" is not a string`);
  if (!isSafetensorsDType(dtype)) {
    fail(path, `${where}: unknown dtype ${JSON.stringify(dtype)}`,
      `known dtypes: ${SAFETENSORS_DTYPES.join(', ')}; the file may come from a newer safetensors version`);
  }
  if (!Array.isArray(shape)) fail(path, `${where}: "shape" is not an array`);
  const dims: bigint[] = [];
  for (const d of shape) {
    if (typeof d !== 'bigint' || d < 0n) fail(path, `${where}: shape ${showJson(shape)} holds ${showJson(d)}, not a non-negative integer`);
    if (d > BigInt(Number.MAX_SAFE_INTEGER)) fail(path, `${where}: dimension ${d} is too large`);
    dims.push(d);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2) fail(path, `${where}: "data_offsets" is not an array [begin, end]`);
  const [b, e] = offsets;
  if (typeof b !== 'bigint' || typeof e !== 'bigint' || b < 0n || e < 0n) {
    fail(path, `${where}: data_offsets ${showJson(offsets)} are not non-negative integers`);
  }
  if (b > e) fail(path, `${where}: data_offsets begin ${b} > end ${e}`);
  if (e > BigInt(Number.MAX_SAFE_INTEGER)) fail(path, `${where}: data_offsets end ${e} is too large`);
  const size = tensorByteSize(dtype, dims);
  if (typeof size === 'string') fail(path, `${where}: ${size}`);
  if (size !== e - b) {
    fail(path, `${where}: byte size ${e - b} (data_offsets [${b},${e}]) != ${size} for dtype ${dtype} shape [${dims.join(',')}]`);
  }
  return { info: { name, dtype, shape: dims.map(Number), begin: Number(b), end: Number(e) }, begin: b, end: e };
}

function showJson(v: JsonValue | undefined): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Map) return '{...}';
  if (Array.isArray(v)) return `[${v.map(showJson).join(',')}]`;
  // A float literal with an integral value (2.0) is shown as one: serde rejects it for usize.
  if (typeof v === 'number' && Number.isInteger(v)) return `${v}.0`;
  return JSON.stringify(v);
}

function parseMetadata(path: string, v: JsonValue): Record<string, string> | undefined {
  if (v === null) return undefined;
  if (!(v instanceof Map)) fail(path, '"__metadata__" is not a JSON object of strings');
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, s] of v) {
    if (typeof s !== 'string') fail(path, `"__metadata__" value for key ${JSON.stringify(k)} is not a string`);
    out[k] = s;
  }
  return out;
}

function decodeHeader(path: string, bytes: Uint8Array, n: number): JsonObject {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    fail(path, `header (${n} bytes) is not valid UTF-8`);
  }
  if (!text.startsWith('{')) fail(path, `header does not start with '{' (starts with ${JSON.stringify(text.slice(0, 16))})`);
  let root: JsonValue;
  try {
    root = parseStrictJson(text);
  } catch (e) {
    if (!(e instanceof JsonParseError)) throw e;
    if (e.duplicateKey !== undefined) fail(path, `header has a duplicate key ${JSON.stringify(e.duplicateKey)}`);
    fail(path, `header is not valid JSON: ${e.message}`);
  }
  if (!(root instanceof Map)) fail(path, 'header is not a JSON object');
  return root;
}

/**
 * Reads N from the first 8 bytes and checks it against the limits and `fileSize`, so a
 * reader can validate N before allocating the header buffer.
 */
export function headerLengthOf(prefix: Uint8Array, fileSize: number, path: string): number {
  if (fileSize < 8 || prefix.byteLength < 8) fail(path, `file is shorter than 8 bytes (${Math.min(fileSize, prefix.byteLength)} bytes)`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE)) fail(path, `header length ${n} exceeds the maximum ${MAX_HEADER_SIZE}`);
  if (8n + n > BigInt(fileSize)) fail(path, `header length ${n} runs past the end of the file (${fileSize} bytes)`);
  return Number(n);
}

/**
 * Parses and validates a safetensors header. `bytes` holds the file's first 8 + N bytes
 * (or more, e.g. the whole file); `fileSize` is the whole file's size. Every problem is a
 * FormatError naming `path`, the problem and the tensor where there is one.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, fileSize: number, path: string): SafetensorsHeader {
  const n = headerLengthOf(bytes, fileSize, path);
  if (bytes.byteLength < 8 + n) {
    fail(path, `buffer holds ${bytes.byteLength} bytes but the header needs ${8 + n}`,
      'pass the first 8 + N bytes of the file (or the whole file) to parseSafetensorsHeader');
  }
  const root = decodeHeader(path, bytes, n);
  let metadata: Record<string, string> | undefined;
  const entries: { info: TensorInfo; begin: bigint; end: bigint }[] = [];
  for (const [key, v] of root) {
    if (key === '__metadata__') metadata = parseMetadata(path, v);
    else entries.push(parseEntry(path, key, v));
  }
  // Sort by (begin, end) like the reference, then require contiguity from 0.
  entries.sort((x, y) => (x.begin !== y.begin ? (x.begin < y.begin ? -1 : 1) : x.end < y.end ? -1 : x.end > y.end ? 1 : 0));
  let start = 0n;
  let prev = '';
  for (const e of entries) {
    if (e.begin !== start) {
      const name = JSON.stringify(e.info.name);
      const after = prev === '' ? 'the data section starts at 0' : `the previous tensor ${JSON.stringify(prev)} ends at ${start}`;
      fail(path, e.begin > start
        ? `gap in data: tensor ${name} begins at ${e.begin} but ${after}`
        : `tensors overlap: tensor ${name} begins at ${e.begin} but ${after}`);
    }
    start = e.end;
    prev = e.info.name;
  }
  const expected = 8n + BigInt(n) + start;
  if (expected !== BigInt(fileSize)) {
    fail(path, expected < BigInt(fileSize)
      ? `${BigInt(fileSize) - expected} trailing bytes after the data (file ${fileSize} bytes, header + data ${expected})`
      : `data truncated: header + tensors need ${expected} bytes but the file has ${fileSize}`);
  }
  const tensors = new Map<string, TensorInfo>();
  for (const e of entries) tensors.set(e.info.name, e.info);
  return { headerLength: n, dataStart: 8 + n, metadata, tensors };
}

/**
 * A tensor to write: `data` holds its little-endian, C-order bytes, whole or as parts
 * written one after another (a tensor larger than one JavaScript buffer allows).
 */
export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  data: Uint8Array | readonly Uint8Array[];
}

/** The parts of a tensor's bytes, in order. */
export function dataParts(t: TensorToWrite): readonly Uint8Array[] {
  return t.data instanceof Uint8Array ? [t.data] : t.data;
}

/** The byte length of a tensor's data (all parts). */
export function dataByteLength(t: TensorToWrite): number {
  return dataParts(t).reduce((n, d) => n + d.byteLength, 0);
}

export interface SafetensorsPlan {
  /** The 8-byte length prefix followed by the padded JSON header. */
  header: Uint8Array;
  /** Tensors in data order (dtype descending in enum order, then name ascending). */
  order: TensorToWrite[];
  dataBytes: number;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkTensor(t: TensorToWrite, where: string): void {
  const name = JSON.stringify(t.name);
  if (t.name === '__metadata__') throw new FormatError(`${where}: a tensor cannot be named "__metadata__"`, 'rename the tensor');
  if (LONE_SURROGATE.test(t.name)) throw new FormatError(`${where}: tensor name ${name} is not valid Unicode`, 'rename the tensor');
  if (!isSafetensorsDType(t.dtype)) {
    throw new FormatError(`${where}: tensor ${name} has unknown dtype ${JSON.stringify(t.dtype)}`, `use one of ${SAFETENSORS_DTYPES.join(', ')}`);
  }
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new FormatError(`${where}: tensor ${name} has invalid dimension ${d} in shape [${t.shape.join(',')}]`, 'dimensions must be non-negative integers');
  }
  const size = tensorByteSize(t.dtype, t.shape);
  if (typeof size === 'string') throw new FormatError(`${where}: tensor ${name}: ${size}`, 'pad the tensor to a whole number of bytes');
  const bytes = dataByteLength(t);
  if (size !== BigInt(bytes)) {
    throw new ShapeError(`${where}: tensor ${name} has ${bytes} data bytes, but dtype ${t.dtype} shape [${t.shape.join(',')}] needs ${size}`,
      'pass the tensor bytes that match its dtype and shape');
  }
}

/**
 * Validates tensors and builds the canonical header, byte-identical to the reference
 * writer (tensor.rs `prepare`): sort by dtype descending then name ascending, compact
 * JSON with `__metadata__` first, spaces to a multiple of 8. `where` names the output.
 */
export function planSafetensors(tensors: readonly TensorToWrite[], metadata: Record<string, string> | undefined, where: string): SafetensorsPlan {
  const seen = new Set<string>();
  for (const t of tensors) {
    checkTensor(t, where);
    if (seen.has(t.name)) throw new FormatError(`${where}: duplicate tensor name ${JSON.stringify(t.name)}`, 'tensor names must be unique');
    seen.add(t.name);
  }
  const order = [...tensors].sort((a, b) => (DTYPE_RANK.get(b.dtype) ?? 0) - (DTYPE_RANK.get(a.dtype) ?? 0) || compareCodePoints(a.name, b.name));
  const parts: string[] = [];
  if (metadata !== undefined) {
    const kv = Object.entries(metadata).map(([k, v]) => {
      if (typeof v !== 'string') throw new FormatError(`${where}: metadata value for ${JSON.stringify(k)} is not a string`, 'safetensors metadata maps strings to strings');
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${kv.join(',')}}`);
  }
  let offset = 0;
  for (const t of order) {
    const end = offset + dataByteLength(t);
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const n = Math.ceil(json.byteLength / 8) * 8;
  const header = new Uint8Array(8 + n).fill(0x20, 8 + json.byteLength);
  new DataView(header.buffer).setBigUint64(0, BigInt(n), true);
  header.set(json, 8);
  return { header, order, dataBytes: offset };
}
