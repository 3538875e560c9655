// LoRA / PEFT: configs, the LoRA layer, adapter injection and PEFT adapter directories.
export { LORA_DEFAULTS, LoraConfig, PEFT_VERSION, loraConfigFromHf, loraConfigToHf, resolveLoraConfig, type LoraBias, type LoraInit } from './config.js';
export { LoraLinear, PLAIN_LORA, type LoraAdapterSpec, type LoraBase, type LoraVariant, type MergeableBase } from './lora-layer.js';
export { ModulesToSaveWrapper } from './modules-to-save.js';
export { DEFAULT_TARGET_MODULES } from './matching.js';
export { PEFT_PREFIX, PeftModel, getPeftModel, type AdapterOptions } from './peft-model.js';
export { ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, adapterConfigText, type LoadAdapterOptions, type SaveAdapterOptions } from './adapter-io.js';
