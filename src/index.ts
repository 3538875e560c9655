// ftune's library API: Transformers/PEFT names in camelCase, so Python examples
// translate line by line.
export { AutoModelForCausalLM, type FromPretrainedOptions } from './models/auto.js';
export { AutoTokenizer, Tokenizer } from './tokenizer/tokenizer.js';
export { LlamaForCausalLM } from './models/llama/model.js';
export { llamaConfigFromHf, type LlamaConfig } from './models/llama/config.js';
export type { GenerateOptions } from './generate/generate.js';
export { DecodeStream } from './tokenizer/decode-stream.js';
export { SafetensorsFile, writeSafetensors } from './io/safetensors.js';
export { CheckpointDir } from './io/checkpoint-dir.js';
export { convertLlama2c } from './io/llama2c-convert.js';
export { Tensor } from './tensor/tensor.js';
export { memoryStats, resetPeak, type MemoryStats, type MemoryCategory } from './tensor/memory.js';
export { nativeBackend, refBackend, type Backend } from './backend/index.js';
export { activeIsa, setIsa, supportedIsas, type Isa } from './backend/native/addon.js';
export { FtuneError, FormatError, ShapeError, ConfigError, NativeError, IoError } from './errors.js';
export * from './peft/index.js';
export { Trainer, type TrainableModel, type TrainerOptions, type TrainOutput } from './train/trainer.js';
export { TrainingArguments, resolveTrainingArguments, TRAINING_DEFAULTS } from './train/args.js';
export { EarlyStoppingCallback, type TrainerCallback, type TrainerControl } from './train/callbacks.js';
export { evaluateLoss, type EvalResult } from './train/evaluate.js';
export { loadDataset, splitValidation, packExamples, DataLoader, type Example, type DataFormat } from './data/index.js';
export { Ops } from './autograd/ops.js';
export { Tape } from './autograd/tape.js';
export { BitsAndBytesConfig, QLORA_PRESET } from './quant/config.js';
export { Linear4bit } from './nn/linear4bit.js';
export type { Quant4Weight, QuantType } from './quant/types.js';
export { snapshotDownload, resolvePretrained, resolvePretrainedSync, type HubOptions, type DownloadProgress } from './io/hub.js';
