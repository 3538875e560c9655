// `ftune generate`: loads a model directory and streams a continuation of --prompt.
// stdout gets exactly the prompt followed by the generated text, as tokens arrive;
// everything else (load time, speed) goes to stderr.
import { ConfigError } from '../../errors.js';
import { resolveDType } from '../../models/auto.js';
import { loadModel } from './train-setup.js';
import { hubAdapterDir, hubModelDir } from './hub-model.js';
import { AutoTokenizer } from '../../tokenizer/tokenizer.js';
import { numberFlag, required, type Command } from '../command.js';

export const generateCommand: Command = {
  name: 'generate',
  summary: 'generate text from a model directory (greedy or sampled, streamed)',
  usage: 'ftune generate --model DIR [--adapter DIR] --prompt TEXT [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--dtype f32|bf16] [--chat]',
  flags: {
    model: { type: 'string', arg: 'DIR|REPO', help: 'HF model directory or Hub repo id org/name[@rev] (config.json, *.safetensors, tokenizer.json)' },
    adapter: { type: 'string', arg: 'DIR', help: 'PEFT adapter directory applied without merging' },
    prompt: { type: 'string', arg: 'TEXT', help: 'text to continue', default: '' },
    'max-new-tokens': { type: 'string', arg: 'N', help: 'new tokens at most', default: '128' },
    temperature: { type: 'string', arg: 'T', help: '0 = greedy; default: generation_config.json, else greedy' },
    'top-k': { type: 'string', arg: 'K', help: 'sample from the K most likely tokens (0 = all)' },
    'top-p': { type: 'string', arg: 'P', help: 'sample from the smallest set of tokens with probability >= P' },
    seed: { type: 'string', arg: 'S', help: 'sampling seed', default: '0' },
    dtype: { type: 'string', arg: 'f32|bf16', help: 'weight dtype for matmuls', default: 'f32' },
    chat: { type: 'boolean', help: "wrap the prompt as a user message with the model's chat template" },
  },
  async run(values, io) {
    const cmd = 'generate';
    const dir = await hubModelDir(required(values, cmd, 'model'), 'model', io);
    const adapter = await hubAdapterDir(values['adapter'], io);
    const prompt = typeof values['prompt'] === 'string' ? values['prompt'] : '';
    const maxNewTokens = numberFlag(values, cmd, 'max-new-tokens', 'a non-negative integer', (n) => Number.isInteger(n) && n >= 0);
    const temperature = numberFlag(values, cmd, 'temperature', 'a number >= 0', (n) => n >= 0);
    const topK = numberFlag(values, cmd, 'top-k', 'a non-negative integer', (n) => Number.isInteger(n) && n >= 0);
    const topP = numberFlag(values, cmd, 'top-p', 'a number in (0, 1]', (n) => n > 0 && n <= 1);
    const seed = numberFlag(values, cmd, 'seed', 'an integer', Number.isInteger);
    const dtype = resolveDType(values['dtype'] as string | undefined, '--dtype');

    const started = performance.now();
    const tokenizer = await AutoTokenizer.fromPretrained(dir);
    const model = loadModel(dir, adapter, dtype);
    io.stderr(`loaded ${dir} (${model.config.modelType}, ${dtype}) in ${((performance.now() - started) / 1000).toFixed(2)} s\n`);

    let inputIds: number[];
    if (values['chat'] === true) {
      const rendered = tokenizer.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true });
      if (typeof rendered !== 'string') throw new ConfigError('chat template did not render to text', 'check the tokenizer_config.json chat_template');
      inputIds = tokenizer.encode(rendered, { addSpecialTokens: false });
    } else {
      inputIds = tokenizer.encode(prompt);
    }
    if (inputIds.length === 0) {
      const bos = tokenizer.bosTokenId;
      if (bos === undefined) throw new ConfigError('the prompt is empty and the tokenizer has no BOS token', 'pass a non-empty --prompt');
      inputIds = [bos];
    }

    io.stdout(prompt);
    // The prompt's ids go into the stream first so spacing decodes as in one pass; its
    // text is already printed verbatim.
    const stream = tokenizer.decodeStream({ skipSpecialTokens: true });
    stream.push(...inputIds);
    const t0 = performance.now();
    const opts = { onToken: (id: number) => io.stdout(stream.push(id)) };
    const out = model.generate(inputIds, {
      ...opts,
      ...(maxNewTokens !== undefined ? { maxNewTokens } : {}),
      ...(temperature !== undefined ? { temperature } : {}),
      ...(topK !== undefined ? { topK } : {}),
      ...(topP !== undefined ? { topP } : {}),
      ...(seed !== undefined ? { seed } : {}),
    });
    io.stdout(stream.flush());
    const n = out.length - inputIds.length;
    const secs = (performance.now() - t0) / 1000;
    io.stderr(`\n${n} tokens in ${secs.toFixed(2)} s (${(n / secs).toFixed(1)} tokens/s)\n`);
  },
};
