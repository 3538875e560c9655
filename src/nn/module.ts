// Module: a node of the model tree. Parameters are Tensor fields, children are Module
// fields, arrays of Modules, or records of Modules keyed by name (LoRA adapters: lora_A.
// default); field names copy the HF checkpoint paths
// (self_attn.q_proj), so `namedParameters()` yields exactly the safetensors keys.
import { Tensor } from '../tensor/tensor.js';

export abstract class Module {
  /** [HF path, tensor] for every parameter under this module, in field order. */
  namedParameters(prefix = ''): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    for (const [key, value] of Object.entries(this)) {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      if (value instanceof Tensor) out.push([path, value]);
      else if (value instanceof Module) out.push(...value.namedParameters(path));
      else if (Array.isArray(value)) {
        value.forEach((child, i) => {
          if (child instanceof Module) out.push(...child.namedParameters(`${path}.${i}`));
        });
      } else if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
        for (const [name, child] of Object.entries(value as Record<string, unknown>)) {
          if (child instanceof Module) out.push(...child.namedParameters(`${path}.${name}`));
        }
      }
    }
    return out;
  }

  /** [path, module] for this module and every module under it (path '' for this one). */
  namedModules(prefix = ''): Array<[string, Module]> {
    const out: Array<[string, Module]> = [[prefix, this]];
    const visit = (path: string, value: unknown): void => {
      if (value instanceof Module) out.push(...value.namedModules(path));
    };
    for (const [key, value] of Object.entries(this)) {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      if (Array.isArray(value)) value.forEach((child, i) => visit(`${path}.${i}`, child));
      else if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
        for (const [name, child] of Object.entries(value as Record<string, unknown>)) visit(`${path}.${name}`, child);
      } else visit(path, value);
    }
    return out;
  }

  /** Releases every parameter's storage (the model is unusable afterwards). */
  releaseParameters(): void {
    for (const [, t] of this.namedParameters()) t.release();
  }
}
