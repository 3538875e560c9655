// `ftune convert-llama2c`: a llama2.c checkpoint + tokenizer -> an HF model directory
// (config.json, generation_config.json, model.safetensors, tokenizer.json,
// tokenizer_config.json). The directory is built under a temporary name, fsynced and
// renamed into place at the end, so a failed conversion leaves nothing under --output.
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ConfigError } from '../../errors.js';
import { buildDirAtomic, removeStaleTemps } from '../../io/atomic.js';
import { convertLlama2c } from '../../io/llama2c-convert.js';
import { writeSafetensors } from '../../io/safetensors.js';
import { writeJsonFile as writeJson } from '../../models/save.js';
import { required, type Command } from '../command.js';

export const convertLlama2cCommand: Command = {
  name: 'convert-llama2c',
  summary: 'convert a llama2.c checkpoint and tokenizer to a Hugging Face model directory',
  usage: 'ftune convert-llama2c --checkpoint X.bin --tokenizer Y.bin --output DIR',
  flags: {
    checkpoint: { type: 'string', arg: 'FILE', help: 'llama2.c model file (e.g. stories260K.bin)' },
    tokenizer: { type: 'string', arg: 'FILE', help: 'llama2.c tokenizer file (e.g. tok512.bin)' },
    output: { type: 'string', arg: 'DIR', help: 'directory to create (must not exist or be empty)' },
  },
  run(values, io) {
    const cmd = 'convert-llama2c';
    const checkpoint = required(values, cmd, 'checkpoint');
    const tokenizer = required(values, cmd, 'tokenizer');
    const output = required(values, cmd, 'output');
    if (existsSync(output) && readdirSync(output).length > 0) {
      throw new ConfigError(`--output ${output} exists and is not empty`, 'choose a new directory; ftune never overwrites an existing model');
    }
    const converted = convertLlama2c(checkpoint, tokenizer);
    removeStaleTemps(dirname(output), basename(output));
    buildDirAtomic(output, (staging) => {
      writeJson(join(staging, 'config.json'), converted.config);
      writeJson(join(staging, 'generation_config.json'), converted.generationConfig);
      writeJson(join(staging, 'tokenizer.json'), converted.tokenizerJson);
      writeJson(join(staging, 'tokenizer_config.json'), converted.tokenizerConfig);
      writeJson(join(staging, 'special_tokens_map.json'), converted.specialTokensMap);
      writeSafetensors(
        join(staging, 'model.safetensors'),
        converted.tensors.map((t) => ({ name: t.name, dtype: 'F32' as const, shape: t.shape, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) })),
        { format: 'pt' },
      );
    });
    io.stderr(`wrote ${output}: ${converted.tensors.length} tensors\n`);
  },
};
