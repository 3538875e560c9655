// The three leaf layers of a decoder LLM. Each holds its parameters (persistent,
// category "weights") and runs its forward pass on a backend.
import type { Backend } from '../backend/backend.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';

export class Linear extends Module {
  weight: Tensor; // (N, K), f32 or bf16
  bias: Tensor<'f32'> | undefined; // (N)
  constructor(weight: Tensor, bias?: Tensor<'f32'>) {
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
  forward(backend: Backend, x: Tensor<'f32'>): Tensor<'f32'> {
    return backend.linear(x, this.weight, this.bias);
  }
}

export class Embedding extends Module {
  weight: Tensor; // (V, C)
  constructor(weight: Tensor) {
    super();
    this.weight = weight;
  }
  // ids (N) -> (N, C)
  forward(backend: Backend, ids: Tensor<'i32'>): Tensor<'f32'> {
    return backend.embedding(ids, this.weight);
  }
}

export class RMSNorm extends Module {
  weight: Tensor<'f32'>; // (C)
  readonly eps: number;
  constructor(weight: Tensor<'f32'>, eps: number) {
    super();
    this.weight = weight;
    this.eps = eps;
  }
  // x (N, C) -> (N, C)
  forward(backend: Backend, x: Tensor<'f32'>): Tensor<'f32'> {
    return backend.rmsnorm(x, this.weight, this.eps);
  }
}
