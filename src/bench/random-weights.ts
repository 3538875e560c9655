// Seeded random weights for benchmarks: N(0, 0.02) like torch's default init, norms 1;
// frozen bases optionally in bf16, or quantized to 4 bits tensor by tensor (the dense
// copy of each weight is released before the next is made).
import { nativeBackend } from '../backend/index.js';
import type { QuantSource, WeightSource } from '../models/llama/model.js';
import type { BitsAndBytesConfig } from '../quant/config.js';
import { persistQuant4 } from '../quant/types.js';
import { scope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { Rng } from '../util/rng.js';

/** Random weights, N(0, 0.02) like torch's init; norms 1. Frozen LoRA bases in bf16 with --bf16. */
export function randomSource(seed: number, baseDtype: 'f32' | 'bf16'): WeightSource {
  const rng = new Rng(seed);
  return (_name, shape, role) => {
    // Filled in place: a JavaScript temporary of a large weight would stay resident until
    // V8 next collects, which nothing in a training step prompts it to do.
    const t = Tensor.empty(shape, 'f32', 'weights');
    if (role === 'norm') return (t.data.fill(1), t);
    rng.fillNormals(t.data, 0.02);
    if (baseDtype === 'f32' || role === 'bias') return t;
    const b = scope(() => nativeBackend.cast(t, 'bf16')).persist('weights');
    t.release();
    return b;
  };
}

export function randomQuant(seed: number, bnb: BitsAndBytesConfig): QuantSource {
  const rng = new Rng(seed ^ 0x5bd1e995);
  return {
    computeDtype: bnb.bnb4bitComputeDtype === 'bfloat16' ? 'bf16' : 'f32',
    weight: (_name, shape) => scope(() => {
      const dense = Tensor.empty(shape, 'f32', 'workspace');
      rng.fillNormals(dense.data, 0.02);
      const q = nativeBackend.quantize4bit(dense, { quantType: bnb.bnb4bitQuantType, blocksize: bnb.blocksize, doubleQuant: bnb.bnb4bitUseDoubleQuant });
      dense.release();
      return persistQuant4({ ...q, dtype: 'float32' });
    }),
  };
}

