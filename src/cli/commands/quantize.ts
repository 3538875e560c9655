// `ftune quantize`: writes a bitsandbytes 4-bit copy of a model (NF4 or FP4 linear
// layers, optional double quantization; embeddings, norms and lm_head unchanged) that
// Transformers loads with its quantization_config. Built under a temporary name, fsynced
// and renamed into place.
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { ConfigError } from '../../errors.js';
import { buildDirAtomic, removeStaleTemps } from '../../io/atomic.js';
import { AutoModelForCausalLM } from '../../models/auto.js';
import { Linear4bit } from '../../nn/linear4bit.js';
import { BitsAndBytesConfig } from '../../quant/config.js';
import { copyTokenizerFiles } from '../../tokenizer/files.js';
import { hubModelDir } from './hub-model.js';
import { numberFlag, required, type Command } from '../command.js';

export const quantizeCommand: Command = {
  name: 'quantize',
  summary: 'write a bitsandbytes 4-bit (NF4/FP4) copy of a model',
  usage: 'ftune quantize --model DIR --output DIR [--quant-type nf4|fp4] [--double-quant] [--blocksize N] [--compute-dtype float32|bfloat16]',
  flags: {
    model: { type: 'string', arg: 'DIR|REPO', help: 'model directory or Hub repo id (F32, BF16 or F16 safetensors)' },
    output: { type: 'string', arg: 'DIR', help: 'directory to create (must not exist or be empty)' },
    'quant-type': { type: 'string', arg: 'nf4|fp4', help: '4-bit code table', default: 'nf4' },
    'double-quant': { type: 'boolean', help: 'quantize the absmax values too (8-bit, blocks of 256): ~0.37 bit/weight less' },
    blocksize: { type: 'string', arg: 'N', help: 'weights per absmax block', default: '64' },
    'compute-dtype': { type: 'string', arg: 'float32|bfloat16', help: 'dtype the 4-bit layers compute in when loaded', default: 'bfloat16' },
  },
  async run(values, io) {
    const cmd = 'quantize';
    const modelDir = await hubModelDir(required(values, cmd, 'model'), 'model', io);
    const output = required(values, cmd, 'output');
    if (existsSync(output) && readdirSync(output).length > 0) {
      throw new ConfigError(`--output ${output} exists and is not empty`, 'choose a new directory; ftune never overwrites an existing model');
    }
    const bnb = BitsAndBytesConfig({
      loadIn4bit: true,
      bnb4bitQuantType: String(values['quant-type']) as 'nf4' | 'fp4',
      bnb4bitUseDoubleQuant: values['double-quant'] === true,
      bnb4bitComputeDtype: String(values['compute-dtype']) as 'float32' | 'bfloat16',
      blocksize: numberFlag(values, cmd, 'blocksize', 'a power of two from 32 to 4096', Number.isInteger) ?? 64,
    });
    const model = AutoModelForCausalLM.fromPretrained(modelDir, { quantizationConfig: bnb });
    const layers = model.namedModules().filter(([, m]) => m instanceof Linear4bit);
    const bytes = layers.reduce((n, [, m]) => n + (m instanceof Linear4bit ? m.weightBytes : 0), 0);
    const weights = layers.reduce((n, [, m]) => n + (m instanceof Linear4bit ? m.weightCount : 0), 0);
    removeStaleTemps(dirname(output), basename(output));
    buildDirAtomic(output, (staging) => {
      model.savePretrained(staging);
      copyTokenizerFiles(modelDir, staging);
    });
    io.stderr(`quantized ${layers.length} linear layers (${weights} weights) to ${bnb.bnb4bitQuantType}${bnb.bnb4bitUseDoubleQuant ? ' + double quant' : ''}: ${(bytes / 2 ** 20).toFixed(2)} MiB, ${((8 * bytes) / weights).toFixed(3)} bits/weight -> ${output}\n`);
  },
};
