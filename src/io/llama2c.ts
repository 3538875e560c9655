// llama2.c checkpoints (karpathy/llama2.c run.c "version 0" legacy layout, and export.py
// "version 1" fp32 layout) read into Hugging Face Llama tensors: HF names, (out, in)
// shapes, and q/k rows moved from llama2.c's adjacent-pair RoPE layout to HF rotate_half.
// Spec: shared/data/README.md (llama2c section), reference/formats-and-features.md §2.3.4.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { FormatError, IoError, ShapeError } from '../errors.js';

export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  /** The output layer reuses the token embedding (no wcls in the file). */
  sharedClassifier: boolean;
}

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface Llama2cCheckpoint {
  config: Llama2cConfig;
  /** Format version: 0 (run.c legacy, 28-byte header) or 1 (export.py, 256-byte header). */
  version: 0 | 1;
  tensors: NamedTensor[];
}

const V1_MAGIC = 0x616b3432; // "ak42", export.py version1_export
const V1_HEADER = 256;
const V0_HEADER = 28;
/** Bound on every header number: larger values mean a foreign or corrupt file. */
const MAX_DIM = 1 << 20;
const HINT = 'pass a checkpoint written by llama2.c (export.py --version 0 or 1, or the legacy run.c format), e.g. stories260K.bin';

/** Parse and check the header numbers; `file` names the file in errors. */
export function parseLlama2cHeader(head: Buffer, file: string): { config: Llama2cConfig; version: 0 | 1; headerBytes: number } {
  if (head.length < V0_HEADER) throw new FormatError(`${file}: ${head.length} bytes, shorter than the 28-byte llama2.c header`, HINT);
  let version: 0 | 1 = 0;
  let at = 0;
  if (head.readUInt32LE(0) === V1_MAGIC) {
    const v = head.readInt32LE(4);
    if (v !== 1) {
      throw new FormatError(`${file}: llama2.c export version ${v}; only versions 0 and 1 (float32) are supported`,
        'version 2 is int8-quantized; re-export with llama2.c export.py --version 1 (or 0)');
    }
    if (head.length < V1_HEADER) throw new FormatError(`${file}: ${head.length} bytes, shorter than the 256-byte version-1 header`, HINT);
    version = 1;
    at = 8;
  }
  const n = (i: number): number => head.readInt32LE(at + 4 * i);
  const dim = n(0), hiddenDim = n(1), nLayers = n(2), nHeads = n(3), nKvHeads = n(4), rawVocab = n(5), seqLen = n(6);
  const fields: [string, number][] = [['dim', dim], ['hidden_dim', hiddenDim], ['n_layers', nLayers], ['n_heads', nHeads],
    ['n_kv_heads', nKvHeads], ['|vocab_size|', Math.abs(rawVocab)], ['seq_len', seqLen]];
  for (const [name, value] of fields) {
    if (!(value > 0 && value <= MAX_DIM)) {
      throw new FormatError(`${file}: header field ${name} = ${value} is not in 1..${MAX_DIM} (header ${fields.map(([k, x]) => `${k}=${x}`).join(', ')})`, HINT);
    }
  }
  if (dim % nHeads !== 0 || (dim / nHeads) % 2 !== 0) {
    throw new FormatError(`${file}: dim ${dim} is not n_heads ${nHeads} times an even head size`, HINT);
  }
  if (nKvHeads > nHeads || nHeads % nKvHeads !== 0) {
    throw new FormatError(`${file}: n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`, HINT);
  }
  const sharedClassifier = version === 1 ? head.readUInt8(36) === 1 : rawVocab > 0;
  const config = { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(rawVocab), seqLen, sharedClassifier };
  return { config, version, headerBytes: version === 1 ? V1_HEADER : V0_HEADER };
}

/** The float32 arrays of a file, in file order: [llama2.c name, element count]. */
function layout(c: Llama2cConfig, version: 0 | 1): [string, number][] {
  const kvDim = (c.dim * c.nKvHeads) / c.nHeads;
  const L = c.nLayers;
  const stacks: Record<string, number> = {
    token_embedding: c.vocabSize * c.dim, rms_att: L * c.dim, rms_ffn: L * c.dim, rms_final: c.dim,
    wq: L * c.dim * c.dim, wk: L * kvDim * c.dim, wv: L * kvDim * c.dim, wo: L * c.dim * c.dim,
    w1: L * c.hiddenDim * c.dim, w2: L * c.dim * c.hiddenDim, w3: L * c.hiddenDim * c.dim,
    freq_cis: c.seqLen * (c.dim / c.nHeads), wcls: c.vocabSize * c.dim,
  };
  const order = version === 0
    ? ['token_embedding', 'rms_att', 'wq', 'wk', 'wv', 'wo', 'rms_ffn', 'w1', 'w2', 'w3', 'rms_final', 'freq_cis']
    : ['rms_att', 'rms_ffn', 'rms_final', 'token_embedding', 'wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3'];
  if (!c.sharedClassifier) order.push('wcls');
  return order.map((k) => [k, stacks[k] ?? 0]);
}

/** Read `count` float32 values at byte `pos` (little-endian file, little-endian host). */
function readF32(fd: number, pos: number, count: number): Float32Array {
  const out = new Float32Array(count);
  const bytes = new Uint8Array(out.buffer);
  const CHUNK = 1 << 30;
  for (let done = 0; done < bytes.length;) {
    const got = readSync(fd, bytes, done, Math.min(CHUNK, bytes.length - done), pos + done);
    if (got <= 0) throw new IoError(`short read at byte ${pos + done}`, 'the file changed or the disk failed while reading; retry');
    done += got;
  }
  return out;
}

/**
 * Read a llama2.c checkpoint into HF-named float32 tensors. q_proj/k_proj rows are permuted
 * to rotate_half unless `permuteQk` is false. The file size must match the header exactly.
 */
export function readLlama2cCheckpoint(path: string, opts: { permuteQk?: boolean } = {}): Llama2cCheckpoint {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new IoError(`cannot open ${path}: ${(e as Error).message}`, 'check the checkpoint path');
  }
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(size, V1_HEADER));
    readSync(fd, head, 0, head.length, 0);
    const { config, version, headerBytes } = parseLlama2cHeader(head, path);
    const arrays = layout(config, version);
    const floats = arrays.reduce((s, [, n]) => s + n, 0);
    const expected = headerBytes + 4 * floats;
    if (size !== expected) {
      const c = config;
      throw new FormatError(`${path}: file is ${size} bytes but the header (dim ${c.dim}, hidden_dim ${c.hiddenDim}, n_layers ${c.nLayers}, `
        + `n_heads ${c.nHeads}, n_kv_heads ${c.nKvHeads}, vocab_size ${c.vocabSize}, seq_len ${c.seqLen}, `
        + `${c.sharedClassifier ? 'shared' : 'separate'} classifier) implies ${expected} bytes`,
      size < expected ? 'the file is truncated; download it again' : 'the file has trailing bytes or a different layout; re-export it with llama2.c');
    }
    const raw = new Map<string, Float32Array>();
    let pos = headerBytes;
    for (const [name, n] of arrays) {
      if (name !== 'freq_cis') raw.set(name, readF32(fd, pos, n));
      pos += 4 * n;
    }
    return { config, version, tensors: toHfTensors(config, raw, opts.permuteQk ?? true) };
  } finally {
    closeSync(fd);
  }
}

/** Slice layer `l` of a stacked (L, rows, cols) array: -> (rows, cols). */
function layer(stack: Float32Array | undefined, l: number, per: number): Float32Array {
  return whole(stack).slice(l * per, (l + 1) * per);
}

function whole(a: Float32Array | undefined): Float32Array {
  if (a === undefined) throw new ShapeError('llama2c: missing array (internal layout bug)');
  return a;
}

function toHfTensors(c: Llama2cConfig, raw: Map<string, Float32Array>, permuteQk: boolean): NamedTensor[] {
  const kvDim = (c.dim * c.nKvHeads) / c.nHeads;
  const get = (k: string): Float32Array => whole(raw.get(k));
  const out: NamedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, c.dim], data: get('token_embedding') }];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `model.layers.${l}.`;
    const q = layer(raw.get('wq'), l, c.dim * c.dim);
    const k = layer(raw.get('wk'), l, kvDim * c.dim);
    out.push(
      { name: `${p}input_layernorm.weight`, shape: [c.dim], data: layer(raw.get('rms_att'), l, c.dim) },
      { name: `${p}self_attn.q_proj.weight`, shape: [c.dim, c.dim], data: permuteQk ? permuteToRotateHalf(q, c.nHeads, c.dim) : q },
      { name: `${p}self_attn.k_proj.weight`, shape: [kvDim, c.dim], data: permuteQk ? permuteToRotateHalf(k, c.nKvHeads, c.dim) : k },
      { name: `${p}self_attn.v_proj.weight`, shape: [kvDim, c.dim], data: layer(raw.get('wv'), l, kvDim * c.dim) },
      { name: `${p}self_attn.o_proj.weight`, shape: [c.dim, c.dim], data: layer(raw.get('wo'), l, c.dim * c.dim) },
      { name: `${p}post_attention_layernorm.weight`, shape: [c.dim], data: layer(raw.get('rms_ffn'), l, c.dim) },
      { name: `${p}mlp.gate_proj.weight`, shape: [c.hiddenDim, c.dim], data: layer(raw.get('w1'), l, c.hiddenDim * c.dim) },
      { name: `${p}mlp.up_proj.weight`, shape: [c.hiddenDim, c.dim], data: layer(raw.get('w3'), l, c.hiddenDim * c.dim) },
      { name: `${p}mlp.down_proj.weight`, shape: [c.dim, c.hiddenDim], data: layer(raw.get('w2'), l, c.dim * c.hiddenDim) },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [c.dim], data: get('rms_final') });
  if (!c.sharedClassifier) out.push({ name: 'lm_head.weight', shape: [c.vocabSize, c.dim], data: get('wcls') });
  return out;
}

/**
 * Rows of q or k from adjacent-pair RoPE order to HF rotate_half: within each head, row
 * 2j+p moves to p*D/2 + j (HF convert_llama_weights_to_hf permute:
 * w.view(H, D/2, 2, C).transpose(1, 2).reshape(H*D, C)).
 * w (H*D, C) -> (H*D, C)
 */
export function permuteToRotateHalf(w: Float32Array, nHeads: number, cols: number): Float32Array {
  return movePairs(w, nHeads, cols, true);
}

/** Inverse of permuteToRotateHalf (HF -> llama2.c/GGUF/Meta). w (H*D, C) -> (H*D, C) */
export function permuteFromRotateHalf(w: Float32Array, nHeads: number, cols: number): Float32Array {
  return movePairs(w, nHeads, cols, false);
}

function movePairs(w: Float32Array, nHeads: number, cols: number, toHalf: boolean): Float32Array {
  const rows = w.length / cols;
  if (!Number.isInteger(rows) || rows % nHeads !== 0 || (rows / nHeads) % 2 !== 0) {
    throw new ShapeError(`q/k permutation: ${w.length} values are not (n_heads ${nHeads} x even head_dim, ${cols})`);
  }
  const d = rows / nHeads;
  const half = d / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHeads; h++) {
    for (let j = 0; j < half; j++) {
      for (let p = 0; p < 2; p++) {
        const pairRow = h * d + 2 * j + p;
        const halfRow = h * d + p * half + j;
        const [src, dst] = toHalf ? [pairRow, halfRow] : [halfRow, pairRow];
        out.set(w.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}
