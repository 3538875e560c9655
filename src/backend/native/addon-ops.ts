// Native Llama forward ops exports (native/src/ops_bind.cc).
export interface OpsAddon {}
