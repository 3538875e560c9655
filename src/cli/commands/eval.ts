// `ftune eval`: loss, perplexity and next-token accuracy of a model (optionally with a
// LoRA adapter) on a dataset. One JSON object on stdout.
import { padIdOf, loadDataset } from '../../data/index.js';
import { resolveDType } from '../../models/auto.js';
import { AutoTokenizer } from '../../tokenizer/tokenizer.js';
import { evaluateLoss } from '../../train/evaluate.js';
import { numberFlag, required, type Command } from '../command.js';
import { hubAdapterDir, hubModelDir } from './hub-model.js';
import { FORMAT_FLAG, MAX_LENGTH_FLAG, dataFormat, loadModel } from './train-setup.js';

export const evalCommand: Command = {
  name: 'eval',
  summary: 'measure loss, perplexity and token accuracy on a dataset',
  usage: 'ftune eval --model DIR [--adapter DIR] --data FILE [--format NAME] [--max-length N] [--batch-size N] [--dtype f32|bf16]',
  flags: {
    model: { type: 'string', arg: 'DIR|REPO', help: 'base model directory or Hub repo id org/name[@rev]' },
    adapter: { type: 'string', arg: 'DIR', help: 'PEFT adapter directory to apply' },
    data: { type: 'string', arg: 'FILE', help: 'JSON or JSONL dataset (same formats as train)' },
    format: FORMAT_FLAG,
    'max-length': MAX_LENGTH_FLAG,
    'train-on-prompt': { type: 'boolean', help: 'score prompts too (default: completions / assistant turns only)' },
    'batch-size': { type: 'string', arg: 'N', help: 'examples per batch', default: '8' },
    dtype: { type: 'string', arg: 'f32|bf16', help: 'weight dtype', default: 'f32' },
  },
  async run(values, io) {
    const cmd = 'eval';
    const modelDir = await hubModelDir(required(values, cmd, 'model'), 'model', io);
    const tokenizer = AutoTokenizer.fromPretrainedSync(modelDir);
    const format = dataFormat(values);
    const maxLength = numberFlag(values, cmd, 'max-length', 'an integer > 1', (n) => Number.isInteger(n) && n > 1) ?? 1024;
    const examples = loadDataset(required(values, cmd, 'data'), tokenizer, { maxLength, trainOnPrompt: values['train-on-prompt'] === true, ...(format !== undefined ? { format } : {}) });
    const adapter = await hubAdapterDir(values['adapter'], io);
    const model = loadModel(modelDir, adapter, resolveDType(values['dtype'] as string | undefined, '--dtype'));
    const batchSize = numberFlag(values, cmd, 'batch-size', 'a positive integer', (n) => Number.isInteger(n) && n > 0) ?? 8;
    const r = evaluateLoss(model, examples, { batchSize, padId: padIdOf(tokenizer) });
    io.stderr(`evaluated ${examples.length} examples (${r.tokens} tokens) in ${r.seconds.toFixed(2)} s\n`);
    io.stdout(`${JSON.stringify({ loss: r.loss, perplexity: r.perplexity, tokens: r.tokens, token_accuracy: r.tokenAccuracy })}\n`);
  },
};
