// Turning a 4-bit model back into a dense one: every Linear4bit is replaced by a Linear
// holding its dequantized weight (f32, or rounded to bf16), as `ftune merge` does before
// folding a QLoRA adapter into the weights.
import type { Backend } from '../backend/backend.js';
import { Linear } from '../nn/layers.js';
import { Linear4bit } from '../nn/linear4bit.js';
import type { Module } from '../nn/module.js';
import { replaceModuleAt } from '../nn/tree.js';

/** Replaces every Linear4bit under root; returns how many layers were dequantized. */
export function dequantizeModel(root: Module, backend: Backend, dtype: 'f32' | 'bf16'): number {
  const layers = root.namedModules().filter((e): e is [string, Linear4bit] => e[1] instanceof Linear4bit);
  for (const [path, layer] of layers) {
    const dense = layer.dequantized(backend);
    const weight = dtype === 'bf16' ? backend.cast(dense.weight, 'bf16').persist('weights') : dense.weight;
    if (weight !== dense.weight) dense.weight.release();
    replaceModuleAt(root, path, new Linear(weight, layer.bias));
    layer.releaseQuant();
  }
  return layers.length;
}
