// The two backends, assembled from their op families (explicit, no registration side
// effects). Model code takes a Backend; production uses nativeBackend.
import type { Backend } from './backend.js';
import { nativeGemm } from './native/gemm.js';
import { nativeNn } from './native/nn.js';
import { refGemm } from './ref/gemm.js';
import { refNn } from './ref/nn.js';

export const nativeBackend: Backend = { name: 'native', ...nativeGemm, ...nativeNn };
export const refBackend: Backend = { name: 'ref', ...refGemm, ...refNn };
export type { Backend } from './backend.js';
