// Native 4-bit QuantOps: shape checks and output allocation here, arithmetic in
// native/src/quant_*.cc. Quantization is bit-exact with the TypeScript reference
// (src/quant/blockwise.ts); the 4-bit linear layer decodes W inside the product (GEMV
// rows for few tokens, the blocked driver's B packer otherwise), never whole.
import { ShapeError } from '../../errors.js';
import { Tensor } from '../../tensor/tensor.js';
import type { FTensor, QuantOps } from '../backend.js';
import { buildWeight, checkQuantize, checkWeight, dtypeName } from '../../quant/weight.js';
import { NESTED_BLOCKSIZE } from '../../quant/blockwise.js';
import { dynamicMap } from '../../quant/tables.js';
import type { Quant4Weight } from '../../quant/types.js';
import type { Q4WeightArgs } from './addon-quant.js';
import { check, native } from './addon.js';
import { checkCompute } from '../ref/quant.js';
import { checkGemm, gemmOperand, matmulDims } from './gemm.js';
import { fmt } from '../nn-checks.js';

/** q's arrays as the kernels take them (sizes are checked again natively). */
export function weightArgs(op: string, q: Quant4Weight): Q4WeightArgs {
  const [N, K] = checkWeight(op, q);
  const n = q.nested;
  return {
    codes: q.codes.data, map: q.quantMap, absmax: n === undefined ? (q.absmax?.data ?? null) : null,
    nestedCodes: n?.codes.data ?? null, nestedAbsmax: n?.absmax.data ?? null, nestedMap: n?.quantMap ?? null,
    offset: n?.offset ?? 0, N, K, blocksize: q.blocksize, nestedBlocksize: n?.blocksize ?? 0,
  };
}

/** x (..., K) -> x as the kernel takes it: f32, or a bf16 workspace copy for bf16 compute. */
function operand(op: string, x: FTensor, width: number, computeDtype: 'f32' | 'bf16'): { data: Float32Array | Uint16Array; rows: number; release(): void } {
  checkCompute(op, computeDtype);
  const d = x.data;
  if (!(d instanceof Float32Array) || x.shape[x.shape.length - 1] !== width) {
    throw new ShapeError(`${op}: input ${x.dtype} [${x.shape.join(', ')}] must be f32 with last dim ${width}`);
  }
  const rows = width === 0 ? x.shape.slice(0, -1).reduce((p, v) => p * v, 1) : x.size / width;
  if (computeDtype === 'f32') return { data: d, rows, release: () => undefined };
  const xb = Tensor.empty(x.shape, 'bf16', 'workspace'); // the cast writes every value
  check(native().castF32ToBf16(d, xb.data, x.size), 'cast_f32_bf16');
  return { data: xb.data, rows, release: () => xb.release() };
}

/** Centered absmax -> 8-bit dynamic-map codes and per-256 scales, natively. */
function quantize8(centered: Float32Array): { codes: Uint8Array; absmax: Float32Array } {
  const codes = new Uint8Array(centered.length), absmax = new Float32Array(Math.ceil(centered.length / NESTED_BLOCKSIZE));
  check(native().q8QuantizeF32(centered, dynamicMap(), codes, absmax, centered.length, NESTED_BLOCKSIZE), 'q8_quantize_f32');
  return { codes, absmax };
}

export const nativeQuant: QuantOps = {
  quantize4bit(w, opts) {
    const [N, K] = checkQuantize(w, opts);
    const n = N * K, type = opts.quantType === 'nf4' ? 0 : 1;
    const codes = new Uint8Array(Math.ceil(n / 2)), absmax = new Float32Array(Math.ceil(n / opts.blocksize));
    const d = w.data;
    if (d instanceof Float32Array) check(native().q4QuantizeF32(d, codes, absmax, n, opts.blocksize, type), 'q4_quantize_f32');
    else if (d instanceof Uint16Array) check(native().q4QuantizeBf16(d, codes, absmax, n, opts.blocksize, type), 'q4_quantize_bf16');
    return buildWeight([N, K], opts, dtypeName(w), codes, absmax, quantize8);
  },

  dequantize4bit(q) {
    const args = weightArgs('dequantize4bit', q);
    const out = Tensor.empty([args.N, args.K], 'f32'); // written whole
    check(native().q4Dequantize(args, out.data), 'q4_dequantize');
    return out;
  },

  // x (..., K) -> (..., N)
  linear4bit(x, q, bias, computeDtype) {
    const args = weightArgs('linear4bit', q);
    if (bias !== undefined && (!(bias.data instanceof Float32Array) || bias.size !== args.N)) {
      throw new ShapeError(`linear4bit: bias ${bias.dtype} [${bias.shape.join(', ')}] must be f32 [${args.N}]`);
    }
    const xs = operand('linear4bit', x, args.K, computeDtype);
    try {
      const y = Tensor.empty([...x.shape.slice(0, -1), args.N], 'f32'); // overwritten (not accumulated)
      const b = bias?.data instanceof Float32Array ? bias.data : null;
      check(native().q4Linear(args, xs.data, b, y.data, xs.rows), 'q4_linear');
      return y;
    } finally {
      xs.release();
    }
  },

  // dy (..., N) -> dx (..., K)
  linear4bitBackwardInput(dy, q, computeDtype) {
    const args = weightArgs('linear4bitBackwardInput', q);
    const ds = operand('linear4bitBackwardInput', dy, args.N, computeDtype);
    try {
      const dx = Tensor.empty([...dy.shape.slice(0, -1), args.K], 'f32'); // overwritten
      check(native().q4LinearBackward(args, ds.data, dx.data, ds.rows), 'q4_linear_bwd');
      return dx;
    } finally {
      ds.release();
    }
  },

  matmulMultiInto(a, outs, opts = {}) {
    const transA = opts.transA ?? false, bf16 = opts.bf16 ?? true;
    if (outs.length < 1 || outs.length > 8) throw new ShapeError(`matmulMultiInto: ${outs.length} outputs, expected 1 to 8`);
    const ad = gemmOperand('matmulMultiInto', 'a', a);
    if (a.shape.length !== 2) throw new ShapeError(`matmulMultiInto: a ${fmt(a.shape)} must be 2-D (M, K), or (K, M) with transA`);
    const [r0 = 0, r1 = 0] = a.shape;
    const [M, K] = transA ? [r1, r0] : [r0, r1];
    const list: Array<[Float32Array | Uint16Array | Q4WeightArgs, Float32Array, number, boolean, boolean, boolean]> = [];
    for (const o of outs) {
      const cd = o.c.data;
      if (!(cd instanceof Float32Array)) throw new ShapeError(`matmulMultiInto: c is ${o.c.dtype} ${fmt(o.c.shape)}, expected f32`);
      if (o.b instanceof Tensor) {
        const spec = matmulDims(a, o.b, transA, o.transB ?? false);
        checkGemm('matmulMultiInto', a, o.b, o.c, spec);
        const bd = gemmOperand('matmulMultiInto', 'b', o.b);
        if (!bf16 && !(ad instanceof Float32Array && bd instanceof Float32Array)) {
          throw new ShapeError(`matmulMultiInto: an f32 product takes f32 operands, got a ${a.dtype} and b ${o.b.dtype}`, 'pass bf16: true for bf16 products');
        }
        list.push([bd, cd, spec.N, o.transB ?? false, o.accumulate ?? false, false]);
        continue;
      }
      if (!bf16) throw new ShapeError('matmulMultiInto: a 4-bit output computes in bf16', 'pass bf16: true (the default)');
      const args = weightArgs('matmulMultiInto', o.b.quant);
      const [k, n] = o.b.backward ? [args.N, args.K] : [args.K, args.N];
      if (transA || o.accumulate === true || K !== k || o.c.size !== M * n) {
        throw new ShapeError(`matmulMultiInto: a ${fmt(a.shape)}${transA ? ' transposed' : ''} and c ${fmt(o.c.shape)} do not fit the 4-bit W [${args.N}, ${args.K}]${o.b.backward ? ' (backward)' : ''}`,
          'a 4-bit output takes a (M, K) untransposed and writes c (M, N), without accumulate');
      }
      list.push([args, cd, n, false, false, o.b.backward]);
    }
    check(native().gemmMulti(ad, M, K, transA, list, bf16), 'gemm_multi');
  },
};
