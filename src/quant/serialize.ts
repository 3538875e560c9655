// bitsandbytes' serialization of 4-bit linear weights (Linear4bit._save_to_state_dict and
// QuantState.as_dict(packed=True)), formats-and-features.md section 2.4. For a layer at
// path P: P.weight (U8 packed codes, shape [(n+1)/2, 1]), P.weight.absmax (F32, or U8
// with double quant), P.weight.quant_map (F32 [16]), P.weight.nested_absmax and
// P.weight.nested_quant_map (double quant only), and
// P.weight.quant_state.bitsandbytes__<type>: the UTF-8 bytes of json.dumps of the rest.
import { FormatError } from '../errors.js';
import type { CheckpointDir } from '../io/checkpoint-dir.js';
import { PyFloat, pyJsonDumpsCompact } from '../io/py-json.js';
import type { TensorToWrite } from '../io/safetensors.js';
import { Tensor } from '../tensor/tensor.js';
import type { Quant4Weight } from './types.js';
import { BLOCKSIZES } from './config.js';

function bytes(t: Tensor): Uint8Array {
  const d = t.data;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The quant_state JSON bitsandbytes packs next to the weight. */
export function quantStateJson(q: Quant4Weight): string {
  const state: Record<string, number | string | number[] | PyFloat> = {
    quant_type: q.quantType, blocksize: q.blocksize, dtype: q.dtype, shape: [q.shape[0], q.shape[1]],
  };
  if (q.nested !== undefined) {
    state['nested_blocksize'] = q.nested.blocksize;
    state['nested_dtype'] = 'float32';
    state['nested_offset'] = new PyFloat(q.nested.offset);
  }
  return pyJsonDumpsCompact(state);
}

/** The safetensors entries of one 4-bit weight at module path `prefix`. */
export function quantTensors(prefix: string, q: Quant4Weight): TensorToWrite[] {
  const w = `${prefix}.weight`;
  const out: TensorToWrite[] = [{ name: w, dtype: 'U8', shape: [q.codes.size, 1], data: bytes(q.codes) }];
  if (q.nested !== undefined) {
    out.push({ name: `${w}.absmax`, dtype: 'U8', shape: [q.nested.codes.size], data: bytes(q.nested.codes) });
    out.push({ name: `${w}.nested_absmax`, dtype: 'F32', shape: [q.nested.absmax.size], data: bytes(q.nested.absmax) });
    out.push({ name: `${w}.nested_quant_map`, dtype: 'F32', shape: [256], data: f32Bytes(q.nested.quantMap) });
  } else if (q.absmax !== undefined) {
    out.push({ name: `${w}.absmax`, dtype: 'F32', shape: [q.absmax.size], data: bytes(q.absmax) });
  }
  out.push({ name: `${w}.quant_map`, dtype: 'F32', shape: [16], data: f32Bytes(q.quantMap) });
  const json = new TextEncoder().encode(quantStateJson(q));
  out.push({ name: `${w}.quant_state.bitsandbytes__${q.quantType}`, dtype: 'U8', shape: [json.length], data: json });
  return out;
}

/** True when the checkpoint stores `prefix` as a bitsandbytes 4-bit weight. */
export function isQuantized(ckpt: CheckpointDir, prefix: string): boolean {
  return ckpt.has(`${prefix}.weight.quant_state.bitsandbytes__nf4`) || ckpt.has(`${prefix}.weight.quant_state.bitsandbytes__fp4`);
}

function readTensor<D extends 'u8' | 'f32'>(ckpt: CheckpointDir, name: string, dtype: D, file: string): Tensor<D> {
  if (!ckpt.has(name)) throw new FormatError(`${file}: 4-bit weight is missing ${name}`, 'the checkpoint is incomplete; re-quantize the model with ftune quantize');
  const info = ckpt.info(name);
  const want = dtype === 'u8' ? 'U8' : 'F32';
  if (info.dtype !== want) throw new FormatError(`${info.file}: ${name} is ${info.dtype}, expected ${want}`, 'the checkpoint is not a bitsandbytes 4-bit checkpoint');
  const n = info.shape.reduce((a, b) => a * b, 1);
  const t = Tensor.zeros([n], dtype, 'weights');
  ckpt.readInto(name, bytes(t));
  return t;
}

/** A small f32 table (quant_map) of `count` values as a plain array. */
function readTable(ckpt: CheckpointDir, name: string, file: string, count: number): Float32Array {
  const t = readTensor(ckpt, name, 'f32', file);
  if (t.size !== count) {
    t.release();
    throw new FormatError(`${file}: ${name} holds ${t.size} values, expected ${count}`, 'the checkpoint is corrupt; re-quantize the model');
  }
  const out = Float32Array.from(t.data);
  t.release();
  return out;
}

/** A positive-integer (blocksize) or finite (offset) number field of the quant state, or its default. */
function nestedNumber(state: Record<string, unknown>, key: string, fallback: number, stateName: string, file: string): number {
  const v = state[key] ?? fallback;
  const ok = typeof v === 'number' && Number.isFinite(v) && (key !== 'nested_blocksize' || (Number.isInteger(v) && v > 0 && v <= 1 << 20));
  if (!ok) throw new FormatError(`${file}: ${stateName} has an invalid ${key} (${JSON.stringify(v)})`, 'the checkpoint is corrupt; re-quantize the model');
  return v;
}

/** Reads the 4-bit weight of linear layer `prefix` with shape (N, K) from a checkpoint. */
export function readQuantWeight(ckpt: CheckpointDir, prefix: string, shape: [number, number]): Quant4Weight {
  const w = `${prefix}.weight`;
  const type = ckpt.has(`${w}.quant_state.bitsandbytes__nf4`) ? 'nf4' : 'fp4';
  const stateName = `${w}.quant_state.bitsandbytes__${type}`;
  const file = ckpt.info(stateName).file;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(ckpt.read(stateName)));
  } catch (e) {
    throw new FormatError(`${file}: ${stateName} is not valid JSON: ${(e as Error).message}`, 'the checkpoint is corrupt; re-quantize the model');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new FormatError(`${file}: ${stateName} is not a JSON object`, 'the checkpoint is corrupt; re-quantize the model');
  }
  const state = parsed as Record<string, unknown>;
  const stShape = state['shape'];
  if (!Array.isArray(stShape) || stShape[0] !== shape[0] || stShape[1] !== shape[1]) {
    throw new FormatError(`${file}: ${prefix} quant_state shape ${JSON.stringify(stShape)} does not match config.json's [${shape.join(', ')}]`, 'the weights do not match config.json');
  }
  const blocksize = state['blocksize'];
  if (typeof blocksize !== 'number' || !BLOCKSIZES.includes(blocksize)) {
    throw new FormatError(`${file}: ${stateName} has no valid blocksize (${JSON.stringify(blocksize)})`, `the checkpoint is corrupt; blocksize is one of ${BLOCKSIZES.join(', ')}`);
  }
  const n = shape[0] * shape[1];
  const codes = readTensor(ckpt, w, 'u8', file);
  if (codes.size !== Math.ceil(n / 2)) throw new FormatError(`${file}: ${w} holds ${codes.size} bytes, a [${shape.join(', ')}] 4-bit weight needs ${Math.ceil(n / 2)}`, 'the checkpoint is corrupt');
  const quantMap = readTable(ckpt, `${w}.quant_map`, file, 16);
  const blocks = Math.ceil(n / blocksize);
  const nested = ckpt.has(`${w}.nested_absmax`);
  const q: Quant4Weight = {
    quantType: type, shape, blocksize, codes, quantMap, dtype: typeof state['dtype'] === 'string' ? state['dtype'] : 'float32',
    absmax: nested ? undefined : readTensor(ckpt, `${w}.absmax`, 'f32', file),
    nested: nested
      ? {
          codes: readTensor(ckpt, `${w}.absmax`, 'u8', file),
          absmax: readTensor(ckpt, `${w}.nested_absmax`, 'f32', file),
          quantMap: readTable(ckpt, `${w}.nested_quant_map`, file, 256),
          offset: nestedNumber(state, 'nested_offset', 0, stateName, file),
          blocksize: nestedNumber(state, 'nested_blocksize', 256, stateName, file),
        }
      : undefined,
  };
  const absCount = q.nested?.codes.size ?? q.absmax?.size ?? 0;
  if (absCount !== blocks) throw new FormatError(`${file}: ${w}.absmax holds ${absCount} values, blocksize ${blocksize} needs ${blocks}`, 'the checkpoint is corrupt');
  if (q.nested !== undefined && q.nested.absmax.size !== Math.ceil(blocks / q.nested.blocksize)) {
    throw new FormatError(`${file}: ${w}.nested_absmax holds ${q.nested.absmax.size} values, nested_blocksize ${q.nested.blocksize} needs ${Math.ceil(blocks / q.nested.blocksize)}`, 'the checkpoint is corrupt');
  }
  return q;
}
