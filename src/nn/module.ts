// Module: a node of the model tree. Parameters are Tensor fields, children are Module
// fields or arrays of Modules; field names copy the HF checkpoint paths
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
      }
    }
    return out;
  }

  /** Releases every parameter's storage (the model is unusable afterwards). */
  releaseParameters(): void {
    for (const [, t] of this.namedParameters()) t.release();
  }
}
