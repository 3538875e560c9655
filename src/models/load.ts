// Loading HF checkpoint directories into a model: config.json picks the family from the
// registry, tensors are read one at a time from safetensors (single or sharded) and
// converted to the requested dtype, so peak memory stays near the model's own size.
import { existsSync } from 'node:fs';
import type { Backend } from '../backend/backend.js';
import { FormatError } from '../errors.js';
import { CheckpointDir } from '../io/checkpoint-dir.js';
import { readUtf8File } from '../io/text-file.js';
import type { SafetensorsDType } from '../io/safetensors.js';
import { Tensor } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';
import type { QuantSource, WeightSource } from './llama/model.js';
import type { BitsAndBytesConfig } from '../quant/config.js';
import { isQuantized, readQuantWeight } from '../quant/serialize.js';
import { persistQuant4 } from '../quant/types.js';
import { scope } from '../tensor/scope.js';

/** dtype of matmul weights and embeddings; norms and biases always stay f32. */
export type WeightDType = 'f32' | 'bf16';

const FILE_DTYPES: Partial<Record<SafetensorsDType, DType>> = { F32: 'f32', BF16: 'bf16', F16: 'f16' };

export function readJson(path: string): unknown {
  const text = readUtf8File(path, 'check the path; a model directory holds config.json and model.safetensors');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${path}: invalid JSON: ${(e as Error).message}`, 'fix or re-download the file');
  }
}

export function readJsonIfExists(path: string): unknown {
  return existsSync(path) ? readJson(path) : undefined;
}

/**
 * A WeightSource reading `dir`'s safetensors. Tensors come back as persistent weights:
 * linear and embedding matrices in `dtype`, norms and biases in f32.
 */
export function checkpointSource(dir: string, backend: Backend, dtype: WeightDType, ckpt: CheckpointDir = CheckpointDir.open(dir)): { source: WeightSource; close: () => void } {
  const source: WeightSource = (name, shape, role) => {
    if (!ckpt.has(name)) {
      throw new FormatError(`${dir}: tensor ${name} is missing from the checkpoint`, 'the weights do not match config.json; check that both come from the same model');
    }
    const info = ckpt.info(name);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new FormatError(`${info.file}: tensor ${name} has shape [${info.shape.join(', ')}], config.json implies [${shape.join(', ')}]`,
        'the weights do not match config.json; check that both come from the same model');
    }
    const fileDtype = FILE_DTYPES[info.dtype];
    if (fileDtype === undefined) {
      throw new FormatError(`${info.file}: tensor ${name} has dtype ${info.dtype}; only F32, BF16 and F16 weights load`, 'convert the checkpoint to a float dtype (or load a 4-bit checkpoint with its quantization config)');
    }
    const want: WeightDType = role === 'linear' || role === 'embedding' ? dtype : 'f32';
    const raw = Tensor.zeros(shape, fileDtype, fileDtype === want ? 'weights' : 'workspace');
    ckpt.readInto(name, new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.bytes));
    if (fileDtype === want) return raw;
    const out = backend.cast(raw, want).persist('weights');
    raw.release();
    return out;
  };
  return { source, close: () => ckpt.close() };
}

const QUANT_DTYPE_NAMES: Partial<Record<SafetensorsDType, string>> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };

/**
 * The 4-bit side of loading. A checkpoint saved in bitsandbytes form is read as is;
 * otherwise, with `bnb.loadIn4bit`, each linear weight is read, quantized and its dense
 * copy released before the next one is read, so the load peaks near the 4-bit size plus
 * one tensor. lm_head and llmInt8SkipModules (substring match, as Transformers) stay dense.
 */
export function quantSourceFor(ckpt: CheckpointDir, backend: Backend, bnb: BitsAndBytesConfig, preQuantized: boolean): QuantSource {
  const skip = bnb.llmInt8SkipModules ?? [];
  return {
    computeDtype: bnb.bnb4bitComputeDtype === 'bfloat16' ? 'bf16' : 'f32',
    weight(name, shape) {
      if (name === 'lm_head' || skip.some((s) => name.includes(s))) return undefined;
      if (isQuantized(ckpt, name)) return readQuantWeight(ckpt, name, shape);
      if (preQuantized) return undefined; // stored dense in a quantized checkpoint: keep it so
      const info = ckpt.info(`${name}.weight`);
      const fileDtype = FILE_DTYPES[info.dtype];
      if (fileDtype === undefined) throw new FormatError(`${info.file}: ${name}.weight has dtype ${info.dtype}`, 'quantize from an F32, BF16 or F16 checkpoint');
      return scope(() => {
        const raw = Tensor.zeros(info.shape, fileDtype, 'workspace');
        ckpt.readInto(`${name}.weight`, new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.bytes));
        const dense = fileDtype === 'f16' ? backend.cast(raw, 'f32') : raw;
        const q = backend.quantize4bit(dense, { quantType: bnb.bnb4bitQuantType, blocksize: bnb.blocksize, doubleQuant: bnb.bnb4bitUseDoubleQuant });
        raw.release();
        return persistQuant4({ ...q, dtype: QUANT_DTYPE_NAMES[info.dtype] ?? 'float32' });
      });
    },
  };
}
