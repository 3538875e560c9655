// The two backends, assembled from their op families (explicit, no registration side
// effects). Model code takes a Backend; production uses nativeBackend.
import type { Backend } from './backend.js';
import { nativeGemm } from './native/gemm.js';
import { nativeGrad } from './native/grad.js';
import { nativeNn } from './native/nn.js';
import { nativeQuant } from './native/quant.js';
import { refGemm } from './ref/gemm.js';
import { refGrad } from './ref/grad.js';
import { refNn } from './ref/nn.js';
import { refQuant } from './ref/quant.js';

export const nativeBackend: Backend = { name: 'native', ...nativeGemm, ...nativeNn, ...nativeGrad, ...nativeQuant };
export const refBackend: Backend = { name: 'ref', ...refGemm, ...refNn, ...refGrad, ...refQuant };
export type { Backend } from './backend.js';
