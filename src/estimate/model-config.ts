// Resolves `--model` for the estimate: a model directory (its config.json), a config.json
// path, or a named config (src/models/configs/named.ts). Reads only the config, never weights.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError, IoError } from '../errors.js';
import { llamaConfigFromHf, type LlamaConfig } from '../models/llama/config.js';
import { CONFIG_NAMES, namedConfig } from '../models/configs/named.js';

export function resolveModelConfig(model: string): { config: LlamaConfig; source: string } {
  if (CONFIG_NAMES.includes(model.toLowerCase())) return { config: namedConfig(model), source: `named config ${model.toLowerCase()}` };
  if (!existsSync(model)) {
    throw new IoError(`--model ${model}: no such file or directory, and not a known model name`, `pass a model directory, a config.json path, or one of: ${CONFIG_NAMES.join(', ')}`);
  }
  const path = statSync(model).isDirectory() ? join(model, 'config.json') : model;
  if (!existsSync(path)) throw new IoError(`${path} does not exist`, 'pass a Hugging Face model directory (with config.json) or the config.json itself');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new FormatError(`${path}: ${(e as Error).message}`, 'config.json must be valid JSON');
  }
  return { config: llamaConfigFromHf(json, path), source: path };
}
