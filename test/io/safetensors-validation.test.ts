// safetensors reader validation: one test per malformed input the reference reader rejects
// (reference/formats-and-features.md §2.1), each asserting a FormatError whose message names
// the file, the problem and, where there is one, the tensor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '../../src/errors.js';
import { SafetensorsFile, parseSafetensorsHeader } from '../../src/io/safetensors.js';

const PATH = 'bad.safetensors';

/** u64 LE length | header bytes | `data` zero bytes. */
function file(header: string | Uint8Array, data: number, n?: number): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + h.byteLength + data);
  new DataView(out.buffer).setBigUint64(0, BigInt(n ?? h.byteLength), true);
  out.set(h, 8);
  return out;
}

function entry(dtype: string, shape: unknown[], b: number, e: number): string {
  return `{"dtype":"${dtype}","shape":${JSON.stringify(shape)},"data_offsets":[${b},${e}]}`;
}

function rejects(bytes: Uint8Array, problem: RegExp, fileSize = bytes.byteLength): void {
  assert.throws(() => parseSafetensorsHeader(bytes, fileSize, PATH), (e: unknown) => {
    assert.ok(e instanceof FormatError, `expected FormatError, got ${String(e)}`);
    assert.match(e.message, problem);
    assert.ok(e.message.startsWith(`${PATH}: `), e.message);
    assert.match(e.message, /\nhint: /);
    return true;
  });
}

test('valid: trailing spaces and JSON whitespace after the header are accepted', () => {
  const bytes = file(`{"a":${entry('U8', [2], 0, 2)}}   \n `, 2);
  assert.equal(parseSafetensorsHeader(bytes, bytes.byteLength, PATH).tensors.get('a')?.end, 2);
});

test('file shorter than 8 bytes', () => rejects(new Uint8Array(5), /shorter than 8 bytes \(5 bytes\)/));

test('header length past end of file', () => rejects(file('{}', 0, 1000), /header length 1000 runs past the end of the file \(10 bytes\)/));

test('header length over 100,000,000', () => {
  rejects(file('{}', 0, 100_000_001), /header length 100000001 exceeds the maximum 100000000/, 200_000_000);
  // Through the file reader too: the limit is checked before allocating the header.
  const dir = mkdtempSync(join(tmpdir(), 'ftune-stv-'));
  try {
    const p = join(dir, 'huge.safetensors');
    writeFileSync(p, file('{}', 0, 2 ** 40));
    assert.throws(() => SafetensorsFile.open(p), (e: unknown) => e instanceof FormatError && e.message.startsWith(`${p}: header length 1099511627776 exceeds`));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('header not valid UTF-8', () => rejects(file(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 0), /not valid UTF-8/));

test('header not JSON', () => rejects(file('{"a":', 0), /header is not valid JSON: unexpected end of input/));

test('header not starting with {', () => {
  rejects(file(' {}', 0), /does not start with '\{'/);
  rejects(file('[]', 0), /does not start with '\{'/);
});

test('content after the JSON object (not only whitespace)', () => rejects(file('{}x', 0), /not valid JSON: unexpected content after the JSON value/));

test('__metadata__ not an object of strings', () => {
  rejects(file('{"__metadata__":"pt"}', 0), /"__metadata__" is not a JSON object of strings/);
  rejects(file('{"__metadata__":{"format":"pt","n":1}}', 0), /"__metadata__" value for key "n" is not a string/);
});

test('entry missing dtype, shape or data_offsets', () => {
  rejects(file('{"w":{"shape":[1],"data_offsets":[0,1]}}', 1), /tensor "w": missing field "dtype"/);
  rejects(file('{"w":{"dtype":"U8","data_offsets":[0,1]}}', 1), /tensor "w": missing field "shape"/);
  rejects(file('{"w":{"dtype":"U8","shape":[1]}}', 1), /tensor "w": missing field "data_offsets"/);
  rejects(file('{"w":[1]}', 0), /tensor "w": entry is not a JSON object/);
});

test('entry fields of the wrong type', () => {
  rejects(file('{"w":{"dtype":8,"shape":[1],"data_offsets":[0,1]}}', 1), /tensor "w": "dtype" is not a string/);
  rejects(file('{"w":{"dtype":"U8","shape":"1","data_offsets":[0,1]}}', 1), /tensor "w": "shape" is not an array/);
  rejects(file('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0]}}', 1), /tensor "w": "data_offsets" is not an array \[begin, end\]/);
  rejects(file('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0.0,1]}}', 1), /tensor "w": data_offsets \[0\.0,1\] are not non-negative integers/);
});

test('unknown dtype', () => rejects(file(`{"w":${entry('F128', [1], 0, 16)}}`, 16), /tensor "w": unknown dtype "F128"/));

test('negative or non-integer dimensions', () => {
  rejects(file(`{"w":${entry('U8', [-1], 0, 0)}}`, 0), /tensor "w": shape \[-1\] holds -1, not a non-negative integer/);
  rejects(file('{"w":{"dtype":"U8","shape":[2.5],"data_offsets":[0,2]}}', 2), /tensor "w": shape \[2\.5\] holds 2\.5/);
  // 2.0 is a float literal: serde rejects it for usize even though JSON.parse would give 2.
  rejects(file('{"w":{"dtype":"U8","shape":[2.0],"data_offsets":[0,2]}}', 2), /tensor "w": shape \[2\.0\] holds 2\.0, not a non-negative integer/);
});

test('begin > end', () => rejects(file(`{"w":${entry('U8', [0], 8, 4)}}`, 8), /tensor "w": data_offsets begin 8 > end 4/));

test('byte size differs from numel * bits / 8', () => {
  rejects(file(`{"w":${entry('F32', [2], 0, 4)}}`, 4), /tensor "w": byte size 4 \(data_offsets \[0,4\]\) != 8 for dtype F32 shape \[2\]/);
  rejects(file(`{"q":${entry('F4', [3], 0, 2)}}`, 2), /tensor "q": 3 elements of F4 \(4 bits\) do not end on a byte boundary/);
});

test('gap between tensors, or a first tensor not at 0', () => {
  rejects(file(`{"a":${entry('U8', [4], 0, 4)},"b":${entry('U8', [4], 8, 12)}}`, 12), /gap in data: tensor "b" begins at 8 but the previous tensor "a" ends at 4/);
  rejects(file(`{"a":${entry('U8', [4], 4, 8)}}`, 8), /gap in data: tensor "a" begins at 4 but the data section starts at 0/);
});

test('overlapping tensors', () => {
  rejects(file(`{"a":${entry('U8', [8], 0, 8)},"b":${entry('U8', [8], 4, 12)}}`, 12), /tensors overlap: tensor "b" begins at 4 but the previous tensor "a" ends at 8/);
});

test('trailing bytes after the data', () => rejects(file(`{"a":${entry('U8', [4], 0, 4)}}`, 5), /1 trailing bytes after the data/));

test('truncated data', () => rejects(file(`{"a":${entry('U8', [4], 0, 4)}}`, 3), /data truncated: header \+ tensors need \d+ bytes but the file has \d+/));

test('duplicate keys (JSON.parse would keep the last silently)', () => {
  rejects(file(`{"a":${entry('U8', [4], 0, 4)},"a":${entry('U8', [4], 4, 8)}}`, 8), /header has a duplicate key "a"/);
  // The same key spelled with an escape is still a duplicate.
  rejects(file(`{"a":${entry('U8', [4], 0, 4)},"\\u0061":${entry('U8', [4], 4, 8)}}`, 8), /header has a duplicate key "a"/);
  rejects(file('{"__metadata__":{"k":"1","k":"2"}}', 0), /header has a duplicate key "k"/);
});

test('errors from SafetensorsFile.open name the file path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ftune-stv-'));
  try {
    const p = join(dir, 'trunc.safetensors');
    writeFileSync(p, file(`{"a":${entry('U8', [4], 0, 4)}}`, 2));
    assert.throws(() => SafetensorsFile.open(p), (e: unknown) => e instanceof FormatError && e.message.startsWith(`${p}: data truncated`));
  } finally {
    rmSync(dir, { recursive: true });
  }
});
