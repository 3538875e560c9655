// Linear4bit: a frozen linear layer whose weight is a bitsandbytes 4-bit matrix. The
// forward pass dequantizes inside the GEMM; backward gives dX only (the weight is never
// trained: QLoRA trains LoRA adapters wrapped around this layer).
import type { Backend, FTensor } from '../backend/backend.js';
import type { Ops } from '../autograd/ops.js';
import type { Quant4Weight } from '../quant/types.js';
import type { Tensor } from '../tensor/tensor.js';
import { Linear } from './layers.js';
import { Module } from './module.js';

export class Linear4bit extends Module {
  /** Not a Tensor field, so namedParameters() lists only the bias; savers handle it. */
  quant: Quant4Weight;
  bias: FTensor | undefined; // (N)
  readonly computeDtype: 'f32' | 'bf16';

  constructor(quant: Quant4Weight, bias: FTensor | undefined, computeDtype: 'f32' | 'bf16') {
    super();
    this.quant = quant;
    this.bias = bias;
    this.computeDtype = computeDtype;
  }

  get inFeatures(): number {
    return this.quant.shape[1];
  }

  get outFeatures(): number {
    return this.quant.shape[0];
  }

  /** Weights this layer stands for (N * K), as PEFT counts Params4bit. */
  get weightCount(): number {
    return this.quant.shape[0] * this.quant.shape[1];
  }

  /** Bytes the 4-bit weight occupies (codes + absmax, or nested absmax). */
  get weightBytes(): number {
    const q = this.quant;
    const nested = q.nested === undefined ? 0 : q.nested.codes.bytes + q.nested.absmax.bytes;
    return q.codes.bytes + (q.absmax?.bytes ?? 0) + nested;
  }

  // x (M, K) -> (M, N)
  forward(ops: Ops, x: FTensor): FTensor {
    return ops.linear4bit(x, this.quant, this.bias, this.computeDtype);
  }

  /** A dense Linear holding the dequantized weight (f32) and the same bias. */
  dequantized(backend: Backend): Linear {
    return new Linear(backend.dequantize4bit(this.quant).persist('weights'), this.bias);
  }

  /**
   * W += scale * delta by dequantizing, adding in f32 and quantizing again with the same
   * settings (merging LoRA into a 4-bit base: rounds the whole weight once more).
   */
  // delta (N, K) f32
  addDeltaWeight(delta: Tensor<'f32'>, scale: number, backend: Backend): void {
    const q = this.quant;
    const dense = backend.dequantize4bit(q);
    backend.addScaledInPlace(dense, delta, scale);
    const next = backend.quantize4bit(dense, { quantType: q.quantType, blocksize: q.blocksize, doubleQuant: q.nested !== undefined });
    dense.release();
    this.releaseQuant();
    this.quant = { ...next, dtype: q.dtype };
  }

  releaseQuant(): void {
    this.quant.codes.release();
    this.quant.absmax?.release();
    this.quant.nested?.codes.release();
    this.quant.nested?.absmax.release();
  }
}
