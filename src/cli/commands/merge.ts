// `ftune merge`: folds a LoRA adapter into its base model (W += scaling * B A) and
// writes a standalone model directory (config, safetensors, tokenizer files). The
// directory is built under a temporary name and renamed into place at the end.
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ConfigError } from '../../errors.js';
import { AutoModelForCausalLM, resolveDType } from '../../models/auto.js';
import { PeftModel } from '../../peft/index.js';
import { copyTokenizerFiles } from '../../tokenizer/files.js';
import { required, type Command } from '../command.js';

export const mergeCommand: Command = {
  name: 'merge',
  summary: 'merge a LoRA adapter into its base model and save the result',
  usage: 'ftune merge --model DIR --adapter DIR --output DIR [--dtype f32|bf16]',
  flags: {
    model: { type: 'string', arg: 'DIR', help: 'base model directory' },
    adapter: { type: 'string', arg: 'DIR', help: 'PEFT adapter directory' },
    output: { type: 'string', arg: 'DIR', help: 'directory to create (must not exist or be empty)' },
    dtype: { type: 'string', arg: 'f32|bf16', help: 'dtype of the saved weights (the merge itself is done in f32)', default: 'f32' },
  },
  run(values, io) {
    const cmd = 'merge';
    const modelDir = required(values, cmd, 'model');
    const adapterDir = required(values, cmd, 'adapter');
    const output = required(values, cmd, 'output');
    const dtype = resolveDType(values['dtype'] as string | undefined, '--dtype');
    if (existsSync(output) && readdirSync(output).length > 0) {
      throw new ConfigError(`--output ${output} exists and is not empty`, 'choose a new directory; ftune never overwrites an existing model');
    }
    const peft = PeftModel.fromPretrained(AutoModelForCausalLM.fromPretrained(modelDir, { dtype }), adapterDir);
    const merged = peft.mergeAndUnload();
    const staging = join(dirname(output), `.${basename(output)}.tmp-${process.pid}`);
    rmSync(staging, { recursive: true, force: true });
    try {
      merged.savePretrained(staging);
      copyTokenizerFiles(modelDir, staging);
      if (existsSync(output)) rmSync(output, { recursive: true });
      renameSync(staging, output);
    } catch (e) {
      rmSync(staging, { recursive: true, force: true });
      throw e;
    }
    io.stderr(`merged ${adapterDir} into ${modelDir} -> ${output}\n`);
  },
};
