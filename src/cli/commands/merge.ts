// `ftune merge`: folds a LoRA adapter into its base model (W += scaling * B A) and
// writes a standalone model directory (config, safetensors, tokenizer files). The
// directory is built under a temporary name, fsynced and renamed into place at the end.
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { ConfigError } from '../../errors.js';
import { buildDirAtomic, removeStaleTemps } from '../../io/atomic.js';
import { AutoModelForCausalLM, resolveDType } from '../../models/auto.js';
import { PeftModel } from '../../peft/index.js';
import { copyTokenizerFiles } from '../../tokenizer/files.js';
import { dequantizeModel } from '../../quant/dequantize-model.js';
import { hubModelDir } from './hub-model.js';
import { required, type Command } from '../command.js';

export const mergeCommand: Command = {
  name: 'merge',
  summary: 'merge a LoRA adapter into its base model and save the result',
  usage: 'ftune merge --model DIR --adapter DIR --output DIR [--dtype f32|bf16] [--requantize]',
  flags: {
    model: { type: 'string', arg: 'DIR|REPO', help: 'base model directory or Hub repo id org/name[@rev]' },
    adapter: { type: 'string', arg: 'DIR', help: 'PEFT adapter directory' },
    output: { type: 'string', arg: 'DIR', help: 'directory to create (must not exist or be empty)' },
    dtype: { type: 'string', arg: 'f32|bf16', help: 'dtype of the saved weights (the merge itself is done in f32)', default: 'f32' },
    requantize: { type: 'boolean', help: 'with a 4-bit base: merge and quantize again to 4 bits (rounds every merged weight once more)' },
  },
  async run(values, io) {
    const cmd = 'merge';
    const modelDir = await hubModelDir(required(values, cmd, 'model'), 'model', io);
    const adapterDir = await hubModelDir(required(values, cmd, 'adapter'), 'adapter', io);
    const output = required(values, cmd, 'output');
    const dtype = resolveDType(values['dtype'] as string | undefined, '--dtype');
    if (existsSync(output) && readdirSync(output).length > 0) {
      throw new ConfigError(`--output ${output} exists and is not empty`, 'choose a new directory; ftune never overwrites an existing model');
    }
    const base = AutoModelForCausalLM.fromPretrained(modelDir, { dtype });
    if (base.quantizationConfig !== undefined) {
      if (values['requantize'] === true) {
        io.stderr('warning: --requantize rounds every merged weight to 4 bits again; the merged model is not exactly base + adapter\n');
      } else {
        const n = dequantizeModel(base, base.backend, dtype);
        base.quantizationConfig = undefined;
        io.stderr(`dequantized ${n} 4-bit layers to ${dtype} before merging\n`);
      }
    }
    const merged = PeftModel.fromPretrained(base, adapterDir).mergeAndUnload();
    removeStaleTemps(dirname(output), basename(output));
    buildDirAtomic(output, (staging) => {
      merged.savePretrained(staging);
      copyTokenizerFiles(modelDir, staging);
    });
    io.stderr(`merged ${adapterDir} into ${modelDir} -> ${output}\n`);
  },
};
