// Reference 4-bit QuantOps in pure TypeScript: quantization exactly as bitsandbytes
// (src/quant/blockwise.ts), and the 4-bit linear layer as the reference linear/matmul on
// the dequantized matrix (float64 sums). bf16 compute rounds the dequantized W (and, in
// the reference GEMM, x or dy) to bf16. f64 activations (gradient checks) give f64.
import { ShapeError } from '../../errors.js';
import { Tensor } from '../../tensor/tensor.js';
import type { FTensor, QuantOps } from '../backend.js';
import { hasDtype } from '../nn-checks.js';
import { quantize4 } from '../../quant/blockwise.js';
import { buildWeight, checkQuantize, checkWeight, dequantizedValues, dtypeName, valuesF32 } from '../../quant/weight.js';
import type { Quant4Weight } from '../../quant/types.js';
import { f32ToBf16, refGemm, refGemmFloat, refGemmInto } from './gemm.js';
import { matmulDims } from '../native/gemm.js';

/** The dequantized W (N, K) in the dtype the product runs in: f32, bf16 (rounded) or f64. */
function denseWeight<D extends 'f32' | 'bf16' | 'f64'>(q: Quant4Weight, dtype: D): Tensor<D> {
  const [N, K] = checkWeight('linear4bit', q);
  const v = dequantizedValues(q);
  return Tensor.from([N, K], dtype, dtype === 'bf16' ? Array.from(v, f32ToBf16) : v);
}

export function checkCompute(op: string, computeDtype: string): void {
  if (computeDtype !== 'f32' && computeDtype !== 'bf16') throw new ShapeError(`${op}: computeDtype ${computeDtype} is not f32 or bf16`);
}

/** bias as f64 (f64 products take f64 operands only). */
function asF64(t: FTensor | undefined): Tensor<'f64'> | undefined {
  if (t === undefined || hasDtype(t, 'f64')) return t;
  return Tensor.from(t.shape, 'f64', t.data);
}

// x (..., K), W (N, K), bias (N)? -> (..., N) = x W^T + bias
function linear4bit(x: Tensor<'f64'>, q: Quant4Weight, bias: FTensor | undefined, computeDtype: 'f32' | 'bf16'): Tensor<'f64'>;
function linear4bit(x: FTensor, q: Quant4Weight, bias: FTensor | undefined, computeDtype: 'f32' | 'bf16'): Tensor<'f32'>;
function linear4bit(x: FTensor, q: Quant4Weight, bias: FTensor | undefined, computeDtype: 'f32' | 'bf16'): FTensor {
  checkCompute('linear4bit', computeDtype);
  if (hasDtype(x, 'f64')) return refGemmFloat.linear(x, denseWeight(q, 'f64'), asF64(bias));
  if (bias !== undefined && !hasDtype(bias, 'f32')) throw new ShapeError(`linear4bit: bias must be f32 with f32 x, got ${bias.dtype}`);
  if (!hasDtype(x, 'f32')) throw new ShapeError(`linear4bit: x must be f32 or f64, got ${x.dtype}`);
  return refGemm.linear(x, denseWeight(q, computeDtype), bias);
}

// dy (M, N), W (N, K) -> dx (M, K) = dy W
function linear4bitBackwardInput(dy: Tensor<'f64'>, q: Quant4Weight, computeDtype: 'f32' | 'bf16'): Tensor<'f64'>;
function linear4bitBackwardInput(dy: FTensor, q: Quant4Weight, computeDtype: 'f32' | 'bf16'): Tensor<'f32'>;
function linear4bitBackwardInput(dy: FTensor, q: Quant4Weight, computeDtype: 'f32' | 'bf16'): FTensor {
  checkCompute('linear4bitBackwardInput', computeDtype);
  const [N, K] = checkWeight('linear4bitBackwardInput', q);
  const M = N === 0 ? 0 : dy.size / N;
  if (dy.shape[dy.shape.length - 1] !== N || !Number.isInteger(M)) {
    throw new ShapeError(`linear4bitBackwardInput: dy [${dy.shape.join(', ')}] must end in N=${N} for W [${N}, ${K}]`);
  }
  const outShape = [...dy.shape.slice(0, -1), K];
  if (hasDtype(dy, 'f64')) {
    const dx = Tensor.zeros(outShape, 'f64');
    refGemmInto(dx, dy, denseWeight(q, 'f64'), { M, N: K, K: N });
    return dx;
  }
  const dx = Tensor.zeros(outShape, 'f32');
  const a = computeDtype === 'bf16' ? Tensor.from(dy.shape, 'bf16', Array.from(dy.data, f32ToBf16)) : dy;
  refGemmInto(dx, a, denseWeight(q, computeDtype), { M, N: K, K: N });
  return dx;
}

export const refQuant: QuantOps = {
  quantize4bit(w, opts) {
    const [N, K] = checkQuantize(w, opts);
    const { codes, absmax } = quantize4(valuesF32(w), opts.blocksize, opts.quantType);
    return buildWeight([N, K], opts, dtypeName(w), codes, absmax);
  },

  dequantize4bit(q) {
    const [N, K] = checkWeight('dequantize4bit', q);
    return Tensor.from([N, K], 'f32', dequantizedValues(q));
  },

  linear4bit,
  linear4bitBackwardInput,

  // The products one by one: the reference of the native shared-packing version.
  matmulMultiInto(a, outs, opts = {}) {
    if (outs.length < 1 || outs.length > 8) throw new ShapeError(`matmulMultiInto: ${outs.length} outputs, expected 1 to 8`);
    for (const o of outs) {
      if (o.b instanceof Tensor) {
        const spec = matmulDims(a, o.b, opts.transA ?? false, o.transB ?? false);
        refGemmInto(o.c, a, o.b, { ...spec, accumulate: o.accumulate ?? false }, opts.bf16 ?? true);
        continue;
      }
      if (opts.bf16 === false) throw new ShapeError('matmulMultiInto: a 4-bit output computes in bf16');
      if (opts.transA === true || o.accumulate === true) throw new ShapeError('matmulMultiInto: a 4-bit output takes a untransposed, without accumulate');
      const y = o.b.backward ? linear4bitBackwardInput(a as FTensor, o.b.quant, 'bf16') : linear4bit(a as FTensor, o.b.quant, undefined, 'bf16');
      if (y.size !== o.c.size) throw new ShapeError(`matmulMultiInto: c [${o.c.shape.join(', ')}] does not hold the 4-bit product [${y.shape.join(', ')}]`);
      o.c.data.set(y.data);
      y.release();
    }
  },
};
