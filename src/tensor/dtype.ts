// Element types a Tensor can hold and the typed array each is stored in.
// bf16 and f16 are stored as raw 16-bit patterns in a Uint16Array. f64 exists for the
// reference backend only (finite-difference gradient checks); native kernels take f32.

export type DType = 'f32' | 'f64' | 'bf16' | 'f16' | 'i32' | 'u8';

/** Float activations: f32 everywhere, f64 on the reference backend in gradient checks. */
export type FloatDType = 'f32' | 'f64';

export interface ArrayOf {
  f32: Float32Array;
  f64: Float64Array;
  bf16: Uint16Array;
  f16: Uint16Array;
  i32: Int32Array;
  u8: Uint8Array;
}

export type TypedArray = ArrayOf[DType];

export const BYTES_PER_ELEMENT: Record<DType, number> = { f32: 4, f64: 8, bf16: 2, f16: 2, i32: 4, u8: 1 };

/** A typed array of the dtype's kind over `buffer` (whole buffer, `length` elements). */
export function viewOf<D extends DType>(dtype: D, buffer: ArrayBuffer, length: number): ArrayOf[D] {
  switch (dtype) {
    case 'f32':
      return new Float32Array(buffer, 0, length) as ArrayOf[D];
    case 'f64':
      return new Float64Array(buffer, 0, length) as ArrayOf[D];
    case 'bf16':
    case 'f16':
      return new Uint16Array(buffer, 0, length) as ArrayOf[D];
    case 'i32':
      return new Int32Array(buffer, 0, length) as ArrayOf[D];
    default:
      return new Uint8Array(buffer, 0, length) as ArrayOf[D];
  }
}
