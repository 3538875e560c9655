// llama2.c checkpoint import: header/size validation, HF tensor names and shapes, the q/k
// rotate_half permutation (against an independent index formula and against RoPE itself),
// and the whole conversion against the shared stories260K-hf files, bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseLlama2cHeader, permuteFromRotateHalf, permuteToRotateHalf, readLlama2cCheckpoint,
} from '../../src/io/llama2c.js';
import { convertLlama2c } from '../../src/io/llama2c-convert.js';
import { FormatError } from '../../src/errors.js';
import { fixture } from '../helpers/data.js';
import { Rng } from '../helpers/random.js';

/** Minimal safetensors read for this test only (F32 tensors; the real reader lives in io/). */
function readSafetensorsF32(path: string): Map<string, { shape: number[]; data: Float32Array }> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype?: string; shape?: number[]; data_offsets?: [number, number] }>;
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__' || e.dtype !== 'F32' || !e.shape || !e.data_offsets) continue;
    const [b, end] = e.data_offsets;
    const bytes = buf.subarray(8 + n + b, 8 + n + end);
    out.set(name, { shape: e.shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)) });
  }
  return out;
}

function tmpFile(name: string, bytes: Uint8Array): string {
  const path = join(mkdtempSync(join(tmpdir(), 'ftune-l2c-')), name);
  writeFileSync(path, bytes);
  return path;
}

test('stories260K.bin: header (64,172,5,8,4,512,512), shared classifier, HF names and shapes', (t) => {
  const path = fixture(t, 'llama2c', 'stories260K.bin');
  if (!path) return;
  const ck = readLlama2cCheckpoint(path);
  assert.equal(ck.version, 0);
  assert.deepEqual(ck.config, { dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true });
  assert.equal(ck.tensors.length, 2 + 9 * 5); // embed, norm, 9 per layer; no lm_head (tied)
  const byName = new Map(ck.tensors.map((x) => [x.name, x]));
  assert.deepEqual(byName.get('model.embed_tokens.weight')?.shape, [512, 64]);
  assert.deepEqual(byName.get('model.layers.4.self_attn.k_proj.weight')?.shape, [32, 64]);
  assert.deepEqual(byName.get('model.layers.0.mlp.down_proj.weight')?.shape, [64, 172]);
  assert.deepEqual(byName.get('model.layers.0.mlp.gate_proj.weight')?.shape, [172, 64]);
  for (const x of ck.tensors) assert.equal(x.data.length, x.shape.reduce((a, b) => a * b, 1), x.name);
  // First float after the 28-byte header is token_embedding[0][0].
  const raw = readFileSync(path);
  assert.equal(byName.get('model.embed_tokens.weight')?.data[0], raw.readFloatLE(28));
  // Unpermuted read keeps llama2.c's row order: inverse permutation maps one to the other.
  const q = byName.get('model.layers.2.self_attn.q_proj.weight')?.data;
  const qRaw = readLlama2cCheckpoint(path, { permuteQk: false }).tensors.find((x) => x.name === 'model.layers.2.self_attn.q_proj.weight')?.data;
  assert.ok(q && qRaw);
  assert.deepEqual(permuteFromRotateHalf(q, 8, 64), qRaw);
});

test('conversion equals the shared stories260K-hf files: every tensor bit for bit, config, tokenizer', (t) => {
  const bin = fixture(t, 'llama2c', 'stories260K.bin');
  const tok = fixture(t, 'llama2c', 'tok512.bin');
  const hf = fixture(t, 'hf_models', 'stories260K-hf');
  if (!bin || !tok || !hf) return;
  const conv = convertLlama2c(bin, tok);
  const ref = readSafetensorsF32(join(hf, 'model.safetensors'));
  assert.equal(conv.tensors.length, ref.size);
  for (const x of conv.tensors) {
    const r = ref.get(x.name);
    assert.ok(r, x.name);
    assert.deepEqual(x.shape, r.shape, x.name);
    assert.deepEqual(x.data, r.data, x.name);
  }
  const json = (f: string): unknown => JSON.parse(readFileSync(join(hf, f), 'utf8'));
  assert.deepEqual(conv.config, json('config.json'));
  assert.deepEqual(conv.tokenizerJson, json('tokenizer.json'));
  assert.deepEqual(conv.tokenizerConfig, json('tokenizer_config.json'));
  assert.deepEqual(conv.specialTokensMap, json('special_tokens_map.json'));
  assert.deepEqual(conv.generationConfig, json('generation_config.json'));
});

test('q/k permutation matches the view/transpose formula and turns adjacent-pair RoPE into rotate_half', () => {
  // Hand example, H=1, D=4, C=1: rows [r0 r1 r2 r3] (pairs (r0,r1),(r2,r3)) -> [r0 r2 r1 r3].
  assert.deepEqual(permuteToRotateHalf(Float32Array.of(0, 1, 2, 3), 1, 1), Float32Array.of(0, 2, 1, 3));
  const rng = new Rng(7);
  const H = 3, D = 8, C = 5;
  const w = rng.normals(H * D * C);
  // Independent formula: out = w.view(H, D/2, 2, C).transpose(1, 2).reshape(H*D, C), i.e.
  // out[h, p, j, c] = w[h, j, p, c] with strides of the viewed (H, D/2, 2, C) tensor.
  const expected = new Float32Array(w.length);
  for (let h = 0; h < H; h++) for (let p = 0; p < 2; p++) for (let j = 0; j < D / 2; j++) for (let c = 0; c < C; c++) {
    expected[((h * 2 + p) * (D / 2) + j) * C + c] = w[((h * (D / 2) + j) * 2 + p) * C + c] ?? NaN;
  }
  const out = permuteToRotateHalf(w, H, C);
  assert.deepEqual(out, expected);
  assert.deepEqual(permuteFromRotateHalf(out, H, C), w);
  // RoPE check: rotating (w x) in adjacent pairs, then permuting, equals rotating (w' x) with
  // rotate_half; frequency of pair j is 10000^(-2j/D) in both conventions.
  const x = rng.normals(C);
  const matvec = (m: Float32Array): number[] => Array.from({ length: H * D }, (_, r) => {
    let s = 0;
    for (let c = 0; c < C; c++) s += (m[r * C + c] ?? 0) * (x[c] ?? 0);
    return s;
  });
  const pos = 5;
  const pair = matvec(w);
  const half = matvec(out);
  const TOL = 1e-5; // float32 matvec sums in a different row order only; rotations are exact in f64
  for (let h = 0; h < H; h++) {
    for (let j = 0; j < D / 2; j++) {
      const th = pos * Math.pow(10000, (-2 * j) / D);
      const [a, b] = [pair[h * D + 2 * j] ?? 0, pair[h * D + 2 * j + 1] ?? 0];
      const [u, v] = [half[h * D + j] ?? 0, half[h * D + j + D / 2] ?? 0];
      assert.ok(Math.abs((a * Math.cos(th) - b * Math.sin(th)) - (u * Math.cos(th) - v * Math.sin(th))) < TOL);
      assert.ok(Math.abs((a * Math.sin(th) + b * Math.cos(th)) - (v * Math.cos(th) + u * Math.sin(th))) < TOL);
    }
  }
});

test('version-1 export (256-byte header, norms first) reads to the same tensors as version 0', (t) => {
  const path = fixture(t, 'llama2c', 'stories260K.bin');
  if (!path) return;
  const v0 = readLlama2cCheckpoint(path, { permuteQk: false });
  const c = v0.config;
  const head = Buffer.alloc(256);
  head.writeUInt32LE(0x616b3432, 0);
  head.writeInt32LE(1, 4);
  [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.vocabSize, c.seqLen].forEach((v, i) => head.writeInt32LE(v, 8 + 4 * i));
  head.writeUInt8(1, 36);
  const get = (suffix: string): Float32Array[] => v0.tensors.filter((x) => x.name.endsWith(suffix)).map((x) => x.data);
  const order = [
    ...get('input_layernorm.weight'), ...get('post_attention_layernorm.weight'), ...get('model.norm.weight'),
    ...get('embed_tokens.weight'), ...get('q_proj.weight'), ...get('k_proj.weight'), ...get('v_proj.weight'),
    ...get('o_proj.weight'), ...get('gate_proj.weight'), ...get('down_proj.weight'), ...get('up_proj.weight'),
  ];
  const file = tmpFile('v1.bin', Buffer.concat([head, ...order.map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))]));
  const v1 = readLlama2cCheckpoint(file, { permuteQk: false });
  assert.equal(v1.version, 1);
  assert.deepEqual(v1.config, c);
  assert.deepEqual(v1.tensors, v0.tensors);
});

test('malformed checkpoints are FormatErrors naming the file and the problem', (t) => {
  const path = fixture(t, 'llama2c', 'stories260K.bin');
  if (!path) return;
  const good = readFileSync(path);
  const bad = (bytes: Uint8Array, re: RegExp): void => {
    const file = tmpFile('bad.bin', bytes);
    assert.throws(() => readLlama2cCheckpoint(file), (e: unknown) =>
      e instanceof FormatError && e.message.includes(file) && re.test(e.message) && /hint:/.test(e.message), re.source);
  };
  bad(good.subarray(0, good.length - 4), /1056536 bytes but the header .* implies 1056540 bytes[\s\S]*truncated/);
  bad(Buffer.concat([good, Buffer.alloc(8)]), /implies 1056540 bytes[\s\S]*trailing/);
  bad(good.subarray(0, 20), /shorter than the 28-byte/);
  const absurd = Buffer.from(good);
  absurd.writeInt32LE(-64, 0);
  bad(absurd, /dim = -64/);
  const huge = Buffer.from(good);
  huge.writeInt32LE(0x7fffffff, 8);
  bad(huge, /n_layers = 2147483647/);
  const heads = Buffer.from(good);
  heads.writeInt32LE(3, 16); // n_kv_heads 3 does not divide n_heads 8
  bad(heads, /not a multiple of n_kv_heads 3/);
  const negVocab = Buffer.from(good);
  negVocab.writeInt32LE(-512, 20); // claims a separate classifier that the file lacks
  bad(negVocab, /separate classifier\) implies 1187612 bytes/);
  const v2 = Buffer.alloc(256);
  v2.writeUInt32LE(0x616b3432, 0);
  v2.writeInt32LE(2, 4);
  bad(v2, /export version 2/);
  assert.throws(() => parseLlama2cHeader(Buffer.alloc(4), 'x.bin'), FormatError);
});
