// `ftune train`: full fine-tuning or LoRA on a JSON/JSONL dataset, with evaluation,
// checkpoints, resume and early stopping. Progress goes to stderr; one JSON object with
// the results goes to stdout. The final model (full) or adapter (LoRA) is written in
// --output itself, checkpoints in --output/checkpoint-N. Before loading anything it
// refuses an --output that already holds a model or checkpoints (unless resuming) and a
// run `ftune estimate` predicts will not fit in memory (unless --force).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { estimateMemory } from '../../estimate/estimate.js';
import { llamaConfigFromHf } from '../../models/llama/config.js';
import { AutoTokenizer } from '../../tokenizer/tokenizer.js';
import { EarlyStoppingCallback, type TrainerCallback } from '../../train/callbacks.js';
import { checkMemory, checkOutputDir } from '../../train/guards.js';
import { Trainer, type TrainableModel } from '../../train/trainer.js';
import { numberFlag, required, type Command, type FlagValues } from '../command.js';
import { ProgressBar } from '../progress.js';
import { hubModelDir } from './hub-model.js';
import {
  DATA_FLAGS, LORA_FLAGS, TRAINING_FLAGS, loadBase, loraModel, parseMethod, readDatasets, trainingArgs, type Method,
} from './train-setup.js';

export type { Method } from './train-setup.js';

export const trainCommand: Command = {
  name: 'train',
  summary: 'fine-tune a model (full, LoRA or QLoRA) on a dataset',
  usage: 'ftune train --model DIR|REPO --data FILE --method full|lora|qlora --output DIR [flags]',
  flags: {
    model: { type: 'string', arg: 'DIR|REPO', help: 'base model directory (HF layout) or Hub repo id' },
    ...DATA_FLAGS,
    method: { type: 'string', arg: 'full|lora|qlora', help: 'what to train (qlora: LoRA over a 4-bit NF4 base, double quant, bf16 compute)', default: 'lora' },
    ...LORA_FLAGS,
    ...TRAINING_FLAGS,
    'save-steps': { type: 'string', arg: 'N', help: 'checkpoint every N steps (default: with each evaluation, else once per epoch)' },
    'save-total-limit': { type: 'string', arg: 'N', help: 'keep at most N checkpoints (the best is kept)' },
    'early-stopping-patience': { type: 'string', arg: 'N', help: 'stop after N evaluations without improvement; loads the best checkpoint at the end' },
    output: { type: 'string', arg: 'DIR', help: 'where the final model or adapter and the checkpoints go' },
    'resume-from-checkpoint': { type: 'string', arg: 'DIR|latest', help: 'continue a run from a checkpoint' },
    config: { type: 'string', arg: 'FILE', help: 'YAML or JSON file of flag values (flags given here win)' },
    force: { type: 'boolean', help: 'start even when the predicted peak memory exceeds the memory available' },
  },
  async run(values, io) {
    const cmd = 'train';
    const method = parseMethod(values['method']);
    const modelDir = await hubModelDir(required(values, cmd, 'model'), 'model', io);
    const output = required(values, cmd, 'output');
    const seed = numberFlag(values, cmd, 'seed', 'an integer', Number.isInteger) ?? 42;
    checkOutputDir(output, { resuming: typeof values['resume-from-checkpoint'] === 'string' });
    memoryGuard(modelDir, method, values, io.stderr);

    const tokenizer = AutoTokenizer.fromPretrainedSync(modelDir);
    const data = readDatasets(cmd, values, tokenizer, seed);
    if (method === 'qlora') io.stderr('qlora: 4-bit NF4 base with double quantization and bf16 compute (the QLoRA paper\'s choice)\n');
    const base = loadBase(modelDir, method, values);
    const peft = method === 'full' ? undefined : loraModel(cmd, base, values, seed);
    if (peft !== undefined) io.stderr(`${peft.printTrainableParameters()}\n`);
    const model: TrainableModel = peft ?? base;
    const args = trainingArgs(cmd, values, method, output, seed, data.eval !== undefined);
    const callbacks: TrainerCallback[] = [new ProgressBar(io.stderr, process.stderr.isTTY === true)];
    const patience = numberFlag(values, cmd, 'early-stopping-patience', 'a positive integer', (n) => Number.isInteger(n) && n > 0);
    if (patience !== undefined) callbacks.push(new EarlyStoppingCallback({ patience }));
    io.stderr(`training ${method} on ${data.train.length} examples${data.eval !== undefined ? `, evaluating on ${data.eval.length}` : ''}\n`);

    const trainer = new Trainer({ model, args, trainDataset: data.train, ...(data.eval !== undefined ? { evalDataset: data.eval } : {}), tokenizer, callbacks });
    const result = trainer.train();
    trainer.saveModel(output);
    const evalLoss = data.eval !== undefined ? trainer.evaluate()['eval_loss'] : undefined;
    const counts = peft?.countParameters() ?? { all: base.namedParameters().reduce((n, [, t]) => n + t.size, 0), trainable: 0 };
    const trainable = model.trainableParameters().reduce((n, [, t]) => n + t.size, 0);
    io.stdout(`${JSON.stringify({
      method, train_loss: result.trainingLoss, eval_loss: evalLoss ?? null, steps: result.globalStep,
      tokens_per_s: result.metrics['train_tokens_per_second'], peak_rss_mib: process.resourceUsage().maxRSS / 1024,
      trainable_params: trainable, total_params: counts.all, output_dir: output,
    })}\n`);
  },
};

/**
 * Refuses (ConfigError with suggestions) when `ftune estimate` predicts a peak above the
 * memory available, unless --force. The sequence length is --max-length (the longest a
 * batch can be), so the prediction errs high.
 */
function memoryGuard(modelDir: string, method: Method, values: FlagValues, log: (t: string) => void): void {
  const cmd = 'train';
  const int = (n: number): boolean => Number.isInteger(n) && n > 0;
  const configPath = join(modelDir, 'config.json');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch {
    return; // a missing or unreadable config.json is reported by the model loader, with its hint
  }
  const targets = String(values['target-modules'] ?? 'q_proj,v_proj');
  const predicted = estimateMemory(llamaConfigFromHf(json, configPath), {
    method,
    batch: numberFlag(values, cmd, 'batch-size', 'a positive integer', int) ?? 4,
    seq: numberFlag(values, cmd, 'max-length', 'a positive integer', int) ?? 1024,
    r: numberFlag(values, cmd, 'r', 'a positive integer', int) ?? 8,
    targetModules: targets === 'all-linear' ? 'all-linear' : targets.split(',').map((t) => t.trim()).filter((t) => t !== ''),
    gradientCheckpointing: values['gradient-checkpointing'] === true || (method === 'qlora' && values['gradient-checkpointing'] === undefined),
    bf16: values['bf16'] === true,
  }).bytes.total;
  const check = checkMemory(predicted, { force: values['force'] === true });
  const gib = (b: number): string => (b / 2 ** 30).toFixed(2);
  if (!check.fits) log(`warning: --force: predicted peak ${gib(check.predicted)} GiB exceeds the ${gib(check.available)} GiB available (${check.source})\n`);
}
