// Saving a model directory that Transformers and ftune both load: config.json,
// model.safetensors (or shards + index past 5 GB) and generation_config.json, each
// written atomically.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeAllSync, writeFileAtomic } from '../io/atomic.js';
import { writeShardedCheckpoint } from '../io/checkpoint-dir.js';
import type { TensorToWrite } from '../io/safetensors.js';
import type { GenerationDefaults } from '../generate/generate.js';
import type { Tensor } from '../tensor/tensor.js';
import { ShapeError } from '../errors.js';
import type { LlamaConfig } from './llama/config.js';
import type { Module } from '../nn/module.js';
import { Linear4bit } from '../nn/linear4bit.js';
import { bnbConfigToHf, type BitsAndBytesConfig } from '../quant/config.js';
import { quantTensors } from '../quant/serialize.js';

interface SavableModel {
  config: LlamaConfig;
  generationConfig: GenerationDefaults;
  quantizationConfig: BitsAndBytesConfig | undefined;
  namedParameters(): Array<[string, Tensor]>;
  namedModules(): Array<[string, Module]>;
}

const FILE_DTYPE = { f32: 'F32', bf16: 'BF16', f16: 'F16' } as const;

export function writeJsonFile(path: string, value: unknown): void {
  writeFileAtomic(path, (fd) => writeAllSync(fd, Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8')));
}

/** The tensors of a model as safetensors entries (views of their storage, no copies). */
export function tensorsToWrite(named: ReadonlyArray<[string, Tensor]>): TensorToWrite[] {
  return named.map(([name, t]) => {
    const dtype = t.dtype === 'f32' || t.dtype === 'bf16' || t.dtype === 'f16' ? FILE_DTYPE[t.dtype] : undefined;
    if (dtype === undefined) throw new ShapeError(`cannot save ${name}: dtype ${t.dtype} has no safetensors form here`, 'save f32, bf16 or f16 tensors');
    const d = t.data;
    return { name, dtype, shape: [...t.shape], data: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) };
  });
}

export function saveModel(model: SavableModel, dir: string): void {
  mkdirSync(dir, { recursive: true });
  const named = model.namedParameters();
  const dtypes = new Set(named.filter(([n]) => n.endsWith('_proj.weight') || n === 'model.embed_tokens.weight').map(([, t]) => t.dtype));
  const torchDtype = dtypes.size === 1 && dtypes.has('bf16') ? 'bfloat16' : 'float32';
  const quantized = model.namedModules().flatMap(([path, m]) => (m instanceof Linear4bit ? quantTensors(path, m.quant) : []));
  writeShardedCheckpoint(dir, [...tensorsToWrite(named), ...quantized]);
  const config: Record<string, unknown> = { ...model.config.raw, torch_dtype: torchDtype };
  delete config['quantization_config'];
  if (quantized.length > 0 && model.quantizationConfig !== undefined) config['quantization_config'] = bnbConfigToHf(model.quantizationConfig);
  writeJsonFile(join(dir, 'config.json'), config);
  const g = model.generationConfig;
  const gen: Record<string, unknown> = {};
  if (model.config.bosTokenId !== null) gen['bos_token_id'] = model.config.bosTokenId;
  const eos = g.eosTokenIds ?? model.config.eosTokenIds;
  if (eos.length > 0) gen['eos_token_id'] = eos.length === 1 ? eos[0] : eos;
  if (g.doSample !== undefined) gen['do_sample'] = g.doSample;
  if (g.temperature !== undefined) gen['temperature'] = g.temperature;
  if (g.topK !== undefined) gen['top_k'] = g.topK;
  if (g.topP !== undefined) gen['top_p'] = g.topP;
  if (g.maxNewTokens !== undefined) gen['max_new_tokens'] = g.maxNewTokens;
  writeJsonFile(join(dir, 'generation_config.json'), gen);
}
