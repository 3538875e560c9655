// Optimizers over FlatParams: AdamW (torch.optim.AdamW semantics, decoupled weight
// decay, bias correction) and plain SGD. Weight decay skips biases and norm weights,
// as Transformers' Trainer does: those parameters sit at the end of the flat buffers
// (FlatParams orders them so), making each group one contiguous pass.
import type { Backend } from '../backend/backend.js';
import { Tensor } from '../tensor/tensor.js';
import type { FlatParams } from './params.js';

export type OptimizerName = 'adamw' | 'sgd';

export interface OptimizerSpec {
  name: OptimizerName;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export class Optimizer {
  readonly spec: OptimizerSpec;
  readonly params: FlatParams;
  /** Updates done so far (AdamW's bias correction uses step + 1). */
  step = 0;

  constructor(params: FlatParams, spec: OptimizerSpec) {
    this.params = params;
    this.spec = spec;
  }

  /** One update with learning rate lr; gradients are multiplied by gradScale first. */
  update(backend: Backend, lr: number, gradScale: number): void {
    const p = this.params;
    this.step += 1;
    for (const segment of p.segments) {
      // Segment-local bounds of the weight-decay group (decayed parameters come first).
      const decayEnd = Math.min(Math.max(p.decayCount - segment.start, 0), segment.count);
      const groups: Array<[number, number, number]> = [[0, decayEnd, this.spec.weightDecay], [decayEnd, segment.count, 0]];
      for (const [start, end, wd] of groups) {
        if (end <= start) continue;
        const view = (t: Tensor<'f32'>): Tensor<'f32'> => Tensor.view(t, start, [end - start]);
        if (this.spec.name === 'sgd') {
          if (wd !== 0) backend.scaleInPlace(view(segment.values), 1 - lr * wd);
          backend.addScaledInPlace(view(segment.values), view(segment.grads), -lr * gradScale);
        } else {
          backend.adamw(view(segment.values), view(segment.grads), view(segment.m), view(segment.v), {
            lr, beta1: this.spec.beta1, beta2: this.spec.beta2, eps: this.spec.eps, weightDecay: wd, step: this.step, gradScale,
          });
        }
      }
    }
  }
}
