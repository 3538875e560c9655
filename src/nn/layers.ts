// The three leaf layers of a decoder LLM. Each holds its parameters (persistent,
// category "weights") and runs its forward pass on a backend.
import type { FTensor } from '../backend/backend.js';
import type { Ops } from '../autograd/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';
import { ShapeError } from '../errors.js';

/** Anything that maps (M, K) to (M, N): a dense Linear, a 4-bit Linear4bit, a LoRA wrapper. */
export interface LinearLayer extends Module {
  readonly inFeatures: number; // K
  readonly outFeatures: number; // N
  // x (M, K) -> (M, N)
  forward(ops: Ops, x: FTensor): FTensor;
}

export class Linear extends Module implements LinearLayer {
  weight: Tensor; // (N, K), f32 or bf16
  bias: FTensor | undefined; // (N)
  constructor(weight: Tensor, bias?: FTensor) {
    super();
    this.weight = weight;
    this.bias = bias;
  }
  get inFeatures(): number {
    return this.weight.shape[1] ?? 0;
  }
  get outFeatures(): number {
    return this.weight.shape[0] ?? 0;
  }
  // x (M, K) -> (M, N)
  forward(ops: Ops, x: FTensor): FTensor {
    return ops.linear(x, this.weight, this.bias);
  }
}

export class Embedding extends Module {
  weight: Tensor; // (V, C)
  constructor(weight: Tensor) {
    super();
    this.weight = weight;
  }
  // ids (N) -> (N, C)
  forward(ops: Ops, ids: Tensor<'i32'>): FTensor {
    // A tokenizer larger than the embedding (config.json vocab_size) fails here, at first use.
    const v = this.weight.shape[0] ?? 0;
    for (let i = 0; i < ids.data.length; i++) {
      const id = ids.data[i] ?? 0;
      if (id < 0 || id >= v) {
        throw new ShapeError(`embedding: token id ${id} at position ${i} is outside the model's vocabulary [0, ${v}) (vocab_size ${v})`,
          'the tokenizer does not match the model: its vocabulary is larger than config.json vocab_size; use the tokenizer saved with this model');
      }
    }
    return ops.embedding(ids, this.weight);
  }
}

export class RMSNorm extends Module {
  weight: FTensor; // (C)
  readonly eps: number;
  constructor(weight: FTensor, eps: number) {
    super();
    this.weight = weight;
    this.eps = eps;
  }
  // x (N, C) -> (N, C)
  forward(ops: Ops, x: FTensor): FTensor {
    return ops.rmsnorm(x, this.weight, this.eps);
  }
}
