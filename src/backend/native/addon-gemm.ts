// Native GEMM and dtype-conversion exports (native/src/gemm_bind.cc).
export interface GemmAddon {}
