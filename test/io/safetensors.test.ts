// safetensors reader and writer: the reference crate's test vectors (exact bytes), writer
// ordering, 0-rank and empty tensors, the real stories260K checkpoint, lazy reads and the
// atomic writer. Malformed inputs are in safetensors-validation.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError, ShapeError } from '../../src/errors.js';
import { writeFileAtomic } from '../../src/io/atomic.js';
import {
  SafetensorsFile, parseSafetensorsHeader, serializeSafetensors, writeSafetensors, type TensorToWrite,
} from '../../src/io/safetensors.js';
import { fixture } from '../helpers/data.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'ftune-st-'));
}

function f32(...v: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(v).buffer);
}

/** The JSON header text of serialized bytes (padding included). */
function headerText(bytes: Uint8Array): string {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return new TextDecoder().decode(bytes.subarray(8, 8 + n));
}

test('reader accepts the unpadded 60-byte header vector (tensor.rs doc test)', () => {
  const json = '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}';
  assert.equal(json.length, 60);
  const bytes = new Uint8Array(8 + 60 + 16);
  bytes[0] = 60;
  bytes.set(new TextEncoder().encode(json), 8);
  const h = parseSafetensorsHeader(bytes, bytes.byteLength, 'vector.safetensors');
  assert.equal(h.headerLength, 60);
  assert.equal(h.metadata, undefined);
  assert.deepEqual(h.tensors.get('test'), { name: 'test', dtype: 'I32', shape: [2, 2], begin: 0, end: 16 });
});

test('writer golden vector: attn.0 F32 [1,2,3] = 0..5 (tensor.rs test_serialization)', () => {
  const out = serializeSafetensors([{ name: 'attn.0', dtype: 'F32', shape: [1, 2, 3], data: f32(0, 1, 2, 3, 4, 5) }]);
  const expected = [
    64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
    116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
    58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
    101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
    0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
  ];
  assert.deepEqual([...out], expected);
  assert.equal(headerText(out), '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}');
});

test('writer pads with spaces to a multiple of 8 (tensor.rs test_serialization_forced_alignement)', () => {
  const out = serializeSafetensors([{ name: 'attn0', dtype: 'F32', shape: [1, 1, 2, 3], data: f32(0, 1, 2, 3, 4, 5) }]);
  assert.equal(out[0], 72);
  assert.equal(headerText(out), '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ');
  assert.equal(out.byteLength, 8 + 72 + 24);
});

test('writer: no tensors, with and without metadata (tensor.rs test_empty)', () => {
  assert.deepEqual([...serializeSafetensors([])], [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
  const withMeta = serializeSafetensors([], { framework: 'pt' });
  assert.equal(withMeta[0], 40);
  assert.equal(headerText(withMeta), '{"__metadata__":{"framework":"pt"}}     ');
  const h = parseSafetensorsHeader(withMeta, withMeta.byteLength, 'empty');
  assert.deepEqual({ ...h.metadata }, { framework: 'pt' });
  assert.equal(h.tensors.size, 0);
});

test('writer orders by dtype descending in enum order, then name by code point; metadata first', () => {
  const t = (name: string, dtype: TensorToWrite['dtype'], shape: number[], bytes: number): TensorToWrite =>
    ({ name, dtype, shape, data: new Uint8Array(bytes).fill(name.length) });
  const tensors = [
    t('z', 'BOOL', [1], 1), t('u', 'U8', [3], 3), t('b', 'F32', [1], 4), t('a', 'F32', [2], 8), t('c', 'BF16', [1], 2),
    t('x', 'I64', [1], 8), t('f', 'F4', [2], 1), t('a\u{1F600}', 'F32', [1], 4), t('a\uFFFF', 'F32', [1], 4),
  ];
  const out = serializeSafetensors(tensors, { format: 'pt' });
  // U+FFFF sorts before U+1F600 by code point (Rust String order), not by UTF-16 code unit.
  const h = parseSafetensorsHeader(out, out.byteLength, 'mixed');
  assert.deepEqual([...h.tensors.values()].map((i) => `${i.dtype}:${i.name}:${i.begin}`), [
    'I64:x:0', 'F32:a:8', 'F32:a\uFFFF:16', 'F32:a\u{1F600}:20', 'F32:b:24', 'BF16:c:28', 'U8:u:30', 'F4:f:33', 'BOOL:z:34',
  ]);
  const text = headerText(out);
  assert.ok(text.startsWith('{"__metadata__":{"format":"pt"},"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},'), text);
  assert.ok(text.trimEnd().endsWith('"z":{"dtype":"BOOL","shape":[1],"data_offsets":[34,35]}}'), text);
  assert.equal(out.byteLength, 8 + h.headerLength + 35);
  assert.equal(h.headerLength % 8, 0);
});

test('0-rank and empty tensors round-trip', () => {
  const dir = tmp();
  try {
    const p = join(dir, 'x.safetensors');
    writeSafetensors(p, [
      { name: 'scalar', dtype: 'F32', shape: [], data: f32(3.5) },
      { name: 'empty', dtype: 'F32', shape: [0, 3], data: new Uint8Array(0) },
      { name: 'v', dtype: 'F32', shape: [2], data: f32(1, 2) },
    ]);
    const text = headerText(readFileSync(p));
    assert.ok(text.startsWith('{"empty":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"scalar":{"dtype":"F32","shape":[],"data_offsets":[0,4]}'), text);
    const f = SafetensorsFile.open(p);
    assert.deepEqual(f.tensors.get('scalar')?.shape, []);
    assert.deepEqual(new Float32Array(f.read('scalar').buffer), new Float32Array([3.5]));
    assert.equal(f.read('empty').byteLength, 0);
    assert.deepEqual(new Float32Array(f.read('v').buffer), new Float32Array([1, 2]));
    const target = new Uint8Array(8);
    f.readInto('v', target);
    assert.deepEqual(target, f32(1, 2));
    assert.throws(() => f.readInto('v', new Uint8Array(4)), ShapeError);
    assert.throws(() => f.read('nope'), (e: unknown) => e instanceof FormatError && /no tensor named "nope"/.test(e.message));
    f.close();
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('sub-byte dtypes: F4 and F6 sizes', () => {
  const out = serializeSafetensors([
    { name: 'f4', dtype: 'F4', shape: [2, 3], data: new Uint8Array(3) },
    { name: 'f6', dtype: 'F6_E2M3', shape: [4], data: new Uint8Array(3) },
  ]);
  const h = parseSafetensorsHeader(out, out.byteLength, 'sub');
  assert.deepEqual(h.tensors.get('f6'), { name: 'f6', dtype: 'F6_E2M3', shape: [4], begin: 0, end: 3 });
  assert.deepEqual(h.tensors.get('f4'), { name: 'f4', dtype: 'F4', shape: [2, 3], begin: 3, end: 6 });
  assert.throws(() => serializeSafetensors([{ name: 'odd', dtype: 'F4', shape: [3], data: new Uint8Array(2) }]),
    (e: unknown) => e instanceof FormatError && /byte boundary/.test(e.message));
});

test('writer validates before writing: duplicate names, wrong data length, bad dims', () => {
  const dir = tmp();
  try {
    const p = join(dir, 'keep.safetensors');
    writeFileSync(p, 'old');
    const dup = [{ name: 'a', dtype: 'U8' as const, shape: [1], data: new Uint8Array(1) }, { name: 'a', dtype: 'U8' as const, shape: [1], data: new Uint8Array(1) }];
    assert.throws(() => writeSafetensors(p, dup), (e: unknown) => e instanceof FormatError && /duplicate tensor name "a"/.test(e.message));
    assert.throws(() => writeSafetensors(p, [{ name: 'w', dtype: 'F32', shape: [2, 2], data: new Uint8Array(12) }]),
      (e: unknown) => e instanceof ShapeError && /"w" has 12 data bytes.*needs 16/.test(e.message));
    assert.throws(() => writeSafetensors(p, [{ name: 'w', dtype: 'F32', shape: [-1], data: new Uint8Array(0) }]), FormatError);
    assert.throws(() => writeSafetensors(p, [{ name: '__metadata__', dtype: 'U8', shape: [0], data: new Uint8Array(0) }]), FormatError);
    assert.equal(readFileSync(p, 'utf8'), 'old');
    assert.deepEqual(readdirSync(dir), ['keep.safetensors']);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('writeSafetensors streams to the same bytes as serializeSafetensors', () => {
  const dir = tmp();
  try {
    const tensors: TensorToWrite[] = [
      { name: 'b', dtype: 'BF16', shape: [3], data: new Uint8Array([1, 2, 3, 4, 5, 6]) },
      { name: 'a', dtype: 'F32', shape: [2], data: f32(-1, 7) },
    ];
    const p = join(dir, 'x.safetensors');
    writeSafetensors(p, tensors, { format: 'pt' });
    assert.deepEqual(new Uint8Array(readFileSync(p)), serializeSafetensors(tensors, { format: 'pt' }));
    assert.deepEqual(readdirSync(dir), ['x.safetensors']);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('atomic writer: a throwing writer leaves no file under the final name and no temp file', () => {
  const dir = tmp();
  try {
    const p = join(dir, 'out.bin');
    assert.throws(() => writeFileAtomic(p, (fd) => {
      writeSync(fd, 'partial');
      throw new Error('boom');
    }), /boom/);
    assert.deepEqual(readdirSync(dir), []);
    writeFileSync(p, 'previous');
    assert.throws(() => writeFileAtomic(p, () => {
      throw new Error('boom again');
    }), /boom again/);
    assert.equal(readFileSync(p, 'utf8'), 'previous');
    assert.deepEqual(readdirSync(dir), ['out.bin']);
    writeFileAtomic(p, (fd) => writeSync(fd, 'new'));
    assert.equal(readFileSync(p, 'utf8'), 'new');
    assert.deepEqual(readdirSync(dir), ['out.bin']);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

const STORIES_SHAPES: Record<string, number[]> = {
  input_layernorm: [64], post_attention_layernorm: [64], 'self_attn.q_proj': [64, 64], 'self_attn.k_proj': [32, 64],
  'self_attn.v_proj': [32, 64], 'self_attn.o_proj': [64, 64], 'mlp.gate_proj': [172, 64], 'mlp.up_proj': [172, 64], 'mlp.down_proj': [64, 172],
};

test('reads stories260K-hf/model.safetensors: names, shapes, values, canonical re-serialization', (t) => {
  const path = fixture(t, 'hf_models', 'stories260K-hf', 'model.safetensors');
  if (path === undefined) return;
  const f = SafetensorsFile.open(path);
  try {
    assert.deepEqual({ ...f.metadata }, { format: 'pt' });
    const expected = new Map<string, number[]>([['model.embed_tokens.weight', [512, 64]], ['model.norm.weight', [64]]]);
    for (let l = 0; l < 5; l++) for (const [k, s] of Object.entries(STORIES_SHAPES)) expected.set(`model.layers.${l}.${k}.weight`, s);
    assert.equal(f.tensors.size, 47);
    for (const [name, shape] of expected) {
      const info = f.tensors.get(name);
      assert.ok(info, name);
      assert.equal(info.dtype, 'F32');
      assert.deepEqual(info.shape, shape, name);
    }
    // The embedding equals llama2.c's token_embedding (first array after the 28-byte header).
    const bin = fixture(t, 'llama2c', 'stories260K.bin');
    if (bin !== undefined) {
      const fd = openSync(bin, 'r');
      const emb = new Uint8Array(512 * 64 * 4);
      readSync(fd, emb, 0, emb.byteLength, 28);
      closeSync(fd);
      assert.deepEqual(f.read('model.embed_tokens.weight'), emb);
    }
    // All tensors are F32 and the header lists them by name: the file is in canonical order,
    // so re-serializing reproduces it byte for byte.
    const tensors = [...f.tensors.values()].map((i) => ({ name: i.name, dtype: i.dtype, shape: i.shape, data: f.read(i.name) }));
    assert.deepEqual(serializeSafetensors(tensors, f.metadata), new Uint8Array(readFileSync(path)));
  } finally {
    f.close();
  }
});

test('lazy read: opening reads only the header, a tensor read reads only its bytes', (t) => {
  const path = fixture(t, 'hf_models', 'stories260K-hf', 'model.safetensors');
  if (path === undefined) return;
  const reads: [number, number][] = [];
  const f = SafetensorsFile.open(path, { onRead: (pos, len) => reads.push([pos, len]) });
  try {
    assert.deepEqual(reads, [[0, 8], [8, f.dataStart - 8]]);
    const info = f.tensors.get('model.norm.weight');
    assert.ok(info);
    reads.length = 0;
    assert.equal(f.read('model.norm.weight').byteLength, 256);
    assert.deepEqual(reads, [[f.dataStart + info.begin, 256]]);
  } finally {
    f.close();
  }
});

test('lazy read: one small tensor of a 2.5 GiB sparse file, memory stays small', () => {
  const dir = tmp();
  const p = join(dir, 'sparse.safetensors');
  try {
    const big = 625_000_000; // F32 elements = 2.5e9 bytes, past the 2^31 offset boundary
    const json = `{"big":{"dtype":"F32","shape":[${big}],"data_offsets":[0,${big * 4}]},"small":{"dtype":"U8","shape":[16],"data_offsets":[${big * 4},${big * 4 + 16}]}}`;
    const head = new TextEncoder().encode(json);
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(head.byteLength), true);
    const fd = openSync(p, 'w');
    writeSync(fd, prefix, 0, 8, 0);
    writeSync(fd, head, 0, head.byteLength, 8);
    const small = new Uint8Array(16).map((_, i) => i * 7 + 1);
    const dataStart = 8 + head.byteLength;
    ftruncateSync(fd, dataStart + big * 4 + 16);
    writeSync(fd, small, 0, 16, dataStart + big * 4);
    closeSync(fd);
    const before = process.memoryUsage().arrayBuffers;
    const f = SafetensorsFile.open(p);
    assert.deepEqual(f.read('small'), small);
    const grown = process.memoryUsage().arrayBuffers - before;
    f.close();
    assert.ok(grown < 16 * 1024 * 1024, `arrayBuffers grew by ${grown} bytes`);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
