// HF checkpoint directories: single-file and sharded round trips, HF's shard split and index
// text, stale-file cleanup, the real stories260K dir, and index/shard mismatch errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FormatError, IoError } from '../../src/errors.js';
import { CheckpointDir, formatIndexJson, planShards, writeShardedCheckpoint } from '../../src/io/checkpoint-dir.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';
import { fixture } from '../helpers/data.js';
import { Rng } from '../helpers/random.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'ftune-ckpt-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true });
  }
}

/** U8 tensor of `bytes` seeded random bytes. */
function u8(name: string, bytes: number, rng: Rng): TensorToWrite {
  const data = new Uint8Array(bytes).map(() => rng.int(256));
  return { name, dtype: 'U8', shape: [bytes], data };
}

const SIZES: [string, number][] = [['t1', 40], ['t2', 40], ['t3', 30], ['t4', 100], ['t5', 20], ['t6', 10]];

test('planShards follows huggingface_hub: fill in order, an oversized tensor gets its own shard', () => {
  const rng = new Rng(1);
  const shards = planShards(SIZES.map(([n, b]) => u8(n, b, rng)), 64);
  assert.deepEqual(shards.map((s) => s.map((t) => t.name)), [['t1'], ['t2'], ['t4'], ['t3', 't5', 't6']]);
});

test('sharded round trip: names, index text, shard contents, every tensor equal', () => {
  withDir((dir) => {
    const rng = new Rng(7);
    const f: TensorToWrite = { name: 'f', dtype: 'F32', shape: [2, 2], data: new Uint8Array(new Float32Array([1, -2, 3.5, 0]).buffer) };
    const tensors = [f, ...SIZES.map(([n, b]) => u8(n, b, rng))];
    const res = writeShardedCheckpoint(dir, tensors, { maxShardBytes: 64 });
    const names = [1, 2, 3, 4].map((k) => `model-0000${k}-of-00004.safetensors`);
    assert.deepEqual(res, { files: names, index: 'model.safetensors.index.json' });
    assert.deepEqual(readdirSync(dir).sort(), [...names, 'model.safetensors.index.json'].sort());
    const index = readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8');
    assert.equal(index, `{
  "metadata": {
    "total_size": 256
  },
  "weight_map": {
    "f": "model-00001-of-00004.safetensors",
    "t1": "model-00001-of-00004.safetensors",
    "t2": "model-00002-of-00004.safetensors",
    "t3": "model-00004-of-00004.safetensors",
    "t4": "model-00003-of-00004.safetensors",
    "t5": "model-00004-of-00004.safetensors",
    "t6": "model-00004-of-00004.safetensors"
  }
}
`);
    const shard4 = SafetensorsFile.open(join(dir, names[3]!));
    assert.deepEqual({ ...shard4.metadata }, { format: 'pt' });
    assert.deepEqual([...shard4.tensors.keys()], ['t3', 't5', 't6']);
    shard4.close();
    const ck = CheckpointDir.open(dir);
    assert.equal(ck.indexPath, join(dir, 'model.safetensors.index.json'));
    assert.deepEqual(ck.names().sort(), tensors.map((t) => t.name).sort());
    for (const t of tensors) {
      assert.deepEqual(ck.read(t.name), t.data, t.name);
      const info = ck.info(t.name);
      assert.equal(info.dtype, t.dtype);
      assert.deepEqual(info.shape, t.shape);
      assert.equal(dirname(info.file), dir);
    }
    assert.equal(ck.info('t4').file, join(dir, names[2]!));
    assert.throws(() => ck.read('nope'), (e: unknown) => e instanceof FormatError && /no tensor named "nope"/.test(e.message));
    ck.close();
  });
});

test('single model.safetensors when everything fits; re-saving removes stale files', () => {
  withDir((dir) => {
    const rng = new Rng(3);
    const tensors = SIZES.map(([n, b]) => u8(n, b, rng));
    writeShardedCheckpoint(dir, tensors, { maxShardBytes: 64 });
    const res = writeShardedCheckpoint(dir, tensors);
    assert.deepEqual(res, { files: ['model.safetensors'], index: undefined });
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
    const ck = CheckpointDir.open(dir);
    assert.equal(ck.indexPath, undefined);
    for (const t of tensors) assert.deepEqual(ck.read(t.name), t.data);
    assert.equal(ck.info('t1').file, join(dir, 'model.safetensors'));
    ck.close();
    // Back to sharded: the stale single file would otherwise shadow the index.
    writeShardedCheckpoint(dir, tensors, { maxShardBytes: 100 });
    assert.ok(!readdirSync(dir).includes('model.safetensors'));
    assert.ok(readdirSync(dir).includes('model.safetensors.index.json'));
  });
});

test('index JSON escapes non-ASCII like Python json.dumps (ensure_ascii) and sorts by code point', () => {
  const text = formatIndexJson(12, new Map([['b\u00e9', 'x.safetensors'], ['a\u{1F600}', 'x.safetensors'], ['a\uFFFF', 'y.safetensors']]));
  assert.equal(text, '{\n  "metadata": {\n    "total_size": 12\n  },\n  "weight_map": {\n'
    + '    "a\\uffff": "y.safetensors",\n    "a\\ud83d\\ude00": "x.safetensors",\n    "b\\u00e9": "x.safetensors"\n  }\n}\n');
});

test('opens the real stories260K-hf directory', (t) => {
  const path = fixture(t, 'hf_models', 'stories260K-hf', 'model.safetensors');
  if (path === undefined) return;
  const ck = CheckpointDir.open(dirname(path));
  assert.equal(ck.names().length, 47);
  assert.deepEqual(ck.info('model.layers.4.self_attn.k_proj.weight').shape, [32, 64]);
  assert.equal(ck.read('model.norm.weight').byteLength, 256);
  ck.close();
});

function rejects(dir: string, problem: RegExp, kind: typeof FormatError | typeof IoError = FormatError): void {
  assert.throws(() => CheckpointDir.open(dir), (e: unknown) => {
    assert.ok(e instanceof kind, String(e));
    assert.match(e.message, problem);
    assert.match(e.message, /\nhint: /);
    return true;
  });
}

/** A two-shard checkpoint (a, b in shard 1; c in shard 2) for the index error tests. */
function twoShards(dir: string): string {
  const rng = new Rng(5);
  writeShardedCheckpoint(dir, [u8('a', 8, rng), u8('b', 8, rng), u8('c', 16, rng)], { maxShardBytes: 16 });
  return join(dir, 'model.safetensors.index.json');
}

function rewriteIndex(indexPath: string, edit: (wm: Record<string, string>) => void): void {
  const index = JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map: Record<string, string> };
  edit(index.weight_map);
  writeFileSync(indexPath, JSON.stringify(index));
}

test('a directory with neither file lists what it found', () => {
  withDir((dir) => {
    writeFileSync(join(dir, 'pytorch_model.bin'), '');
    writeFileSync(join(dir, 'config.json'), '{}');
    rejects(dir, /no model\.safetensors or model\.safetensors\.index\.json \(found: config\.json, pytorch_model\.bin\)/);
  });
  rejects(join(tmpdir(), 'ftune-no-such-dir-xyz'), /does not exist/, IoError);
});

test('index errors: missing shard, tensor absent from its shard, unmapped tensor, tensor in the wrong shard', () => {
  withDir((dir) => {
    twoShards(dir);
    rmSync(join(dir, 'model-00002-of-00002.safetensors'));
    rejects(dir, /model\.safetensors\.index\.json: tensor "c" is mapped to model-00002-of-00002\.safetensors, which does not exist/);
  });
  withDir((dir) => {
    const idx = twoShards(dir);
    rewriteIndex(idx, (wm) => { wm['ghost'] = 'model-00001-of-00002.safetensors'; });
    rejects(dir, /tensor "ghost" is mapped to model-00001-of-00002\.safetensors, but that file does not hold it/);
  });
  withDir((dir) => {
    const idx = twoShards(dir);
    rewriteIndex(idx, (wm) => { delete wm['b']; });
    rejects(dir, /model-00001-of-00002\.safetensors holds tensor "b", which the index does not list/);
  });
  withDir((dir) => {
    const idx = twoShards(dir);
    // Extra shard holding a tensor the index maps elsewhere.
    writeSafetensors(join(dir, 'model-00003-of-00003.safetensors'), [{ name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array(1) }, { name: 'd', dtype: 'U8', shape: [1], data: new Uint8Array(1) }]);
    rewriteIndex(idx, (wm) => { wm['d'] = 'model-00003-of-00003.safetensors'; });
    rejects(dir, /model-00003-of-00003\.safetensors holds tensor "a", which the index maps to model-00001-of-00002\.safetensors/);
  });
});

test('index errors: bad JSON, no weight_map, file names outside the directory, corrupt shard', () => {
  withDir((dir) => {
    const idx = join(dir, 'model.safetensors.index.json');
    writeFileSync(idx, '{"weight_map": {');
    rejects(dir, /model\.safetensors\.index\.json: not valid JSON/);
    writeFileSync(idx, '{"metadata": {}}');
    rejects(dir, /model\.safetensors\.index\.json: missing "weight_map" object/);
    writeFileSync(idx, '{"weight_map": {"w": "../model.safetensors"}}');
    rejects(dir, /weight_map entry for tensor "w" is "\.\.\/model\.safetensors", not a file name in the directory/);
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'shard.safetensors'), new Uint8Array([1, 2, 3]));
    writeFileSync(idx, '{"weight_map": {"w": "shard.safetensors"}}');
    rejects(dir, /shard\.safetensors: file is shorter than 8 bytes/);
  });
});
