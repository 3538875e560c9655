// `ftune demo`: the whole story offline in a few minutes on 2 cores. Builds a small base
// model by pretraining on a synthetic language the project generates (cached after the
// first run), fine-tunes it with full, LoRA and QLoRA on a generated question-answering
// task the base cannot do, prints the comparison table and before/after generations.
// --model / --data switch it to a real model or dataset; --quick shrinks everything.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { referenceRows } from '../../compare/exact-match.js';
import { textTable } from '../../compare/report.js';
import { loadDataset, type DataOptions } from '../../data/index.js';
import { buildBaseModel, DEMO_BASE, QUICK_BASE } from '../../demo/base-model.js';
import { instructionTask, type QaRow } from '../../demo/corpus.js';
import { generate, type Decoder } from '../../generate/generate.js';
import { AutoModelForCausalLM } from '../../models/auto.js';
import { PeftModel } from '../../peft/index.js';
import { QLORA_PRESET } from '../../quant/config.js';
import { AutoTokenizer, type Tokenizer } from '../../tokenizer/tokenizer.js';
import type { Command, FlagValues, Flags } from '../command.js';
import { ProgressBar } from '../progress.js';
import { COMPARE_FLAGS, runCompare } from './compare.js';
import { DATA_FLAGS, dataFormat, type Method } from './train-setup.js';

/** Demo defaults, full and --quick, applied to flags the user did not give. */
const DEFAULTS: Record<'full' | 'quick', FlagValues> = {
  full: {
    'max-steps': '150', 'batch-size': '16', lr: '3e-3', 'full-lr': '1e-3', 'target-modules': 'all-linear', 'lora-dropout': '0',
    'eval-steps': '25', 'logging-steps': '5', 'max-length': '64', 'exact-match-rows': '50', 'gen-tokens': '64', 'warmup-steps': '10',
  },
  quick: {
    'max-steps': '30', 'batch-size': '16', lr: '5e-3', 'full-lr': '2e-3', 'target-modules': 'all-linear', 'lora-dropout': '0',
    'eval-steps': '10', 'logging-steps': '2', 'max-length': '64', 'exact-match-rows': '12', 'gen-tokens': '16', 'warmup-steps': '3',
  },
};
const TASK_ROWS = { full: { train: 2400, eval: 100 }, quick: { train: 480, eval: 24 } };

/** compare's flags without their defaults (the demo supplies its own). */
function demoFlags(): Flags {
  const out: Flags = {};
  const shared: Flags = { ...DATA_FLAGS, ...COMPARE_FLAGS };
  for (const [name, f] of Object.entries(shared)) {
    const d = DEFAULTS.full[name];
    const { default: _ignored, ...rest } = f;
    out[name] = d === undefined ? f : { ...rest, help: `${f.help} (demo default: ${String(d)}, --quick: ${String(DEFAULTS.quick[name])})` };
  }
  return out;
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'offline demo: pretrain a tiny model, fine-tune it three ways, compare',
  usage: 'ftune demo [--quick] [--output DIR] [--model DIR] [--data FILE [--eval-data FILE]] [compare flags]',
  flags: {
    quick: { type: 'boolean', help: 'a smaller base model, task and run (about a tenth of the time; for tests)' },
    model: { type: 'string', arg: 'DIR', help: 'use this base model instead of building the demo one' },
    ...demoFlags(),
    output: { type: 'string', arg: 'DIR', help: 'where the reports and trained models go', default: 'ftune-demo' },
  },
  run(values, io) {
    const mode = values['quick'] === true ? 'quick' : 'full';
    const v: FlagValues = { ...values };
    for (const [k, d] of Object.entries(DEFAULTS[mode])) v[k] ??= d;
    const output = resolve(String(v['output']));
    mkdirSync(output, { recursive: true });

    let modelDir = typeof v['model'] === 'string' ? v['model'] : undefined;
    if (modelDir === undefined) {
      const spec = mode === 'quick' ? QUICK_BASE : DEMO_BASE;
      io.stderr(`demo base model: Llama, hidden ${spec.hidden}, ${spec.layers} layers, pretrained ${spec.steps} steps on a generated language\n`);
      const built = buildBaseModel(spec, [new ProgressBar(io.stderr, process.stderr.isTTY === true)]);
      io.stderr(built.trained ? `pretrained in ${built.seconds.toFixed(1)} s, cached in ${built.dir}\n` : `using the cached base model ${built.dir}\n`);
      modelDir = built.dir;
    }
    v['model'] = modelDir;
    if (typeof v['data'] !== 'string') {
      const task = instructionTask(TASK_ROWS[mode].train, TASK_ROWS[mode].eval, 7);
      const dataDir = join(output, 'data');
      mkdirSync(dataDir, { recursive: true });
      const write = (name: string, rows: QaRow[]): string => {
        const path = join(dataDir, name);
        writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
        return path;
      };
      v['data'] = write('train.jsonl', task.train);
      v['eval-data'] = write('eval.jsonl', task.eval);
      io.stderr(`task: ${task.train.length} training and ${task.eval.length} held-out questions, e.g. ${JSON.stringify(task.train[0])}\n`);
    } else if (typeof v['eval-data'] !== 'string' && v['val-split'] === undefined) {
      v['val-split'] = '0.1';
    }

    const tokenizer = AutoTokenizer.fromPretrainedSync(modelDir);
    const prompts = demoPrompts(v, tokenizer, 3);
    const before = answers(AutoModelForCausalLM.fromPretrained(modelDir), tokenizer, prompts);
    const report = runCompare('demo', v, io);
    const after = report.methods.map((m) => ({ method: m.method, texts: answers(trainedModel(modelDir ?? '', m.method, m.outputDir), tokenizer, prompts) }));

    io.stdout(`\n${textTable(report.methods)}\n`);
    for (const g of report.gaps) io.stdout(`${g.explanation}\n`);
    io.stdout('\nbefore/after (greedy):\n');
    prompts.forEach((p, i) => {
      io.stdout(`\n  prompt: ${p.text}\n    base  -> ${before[i] ?? ''}\n`);
      for (const a of after) io.stdout(`    ${a.method.padEnd(5)} -> ${a.texts[i] ?? ''}\n`);
    });
    io.stdout(`\nreports: ${join(output, 'report.md')}, report.html, report.json\n`);
  },
};

interface DemoPrompt {
  text: string;
  ids: number[];
}

/** The first n evaluation prompts, rendered by the model's template as in training. */
function demoPrompts(v: FlagValues, tokenizer: Tokenizer, n: number): DemoPrompt[] {
  const format = dataFormat(v);
  const opts: DataOptions = { maxLength: Number(v['max-length']), ...(format !== undefined ? { format } : {}) };
  const path = typeof v['eval-data'] === 'string' ? v['eval-data'] : String(v['data']);
  const rows = referenceRows(loadDataset(path, tokenizer, opts), tokenizer.eosTokenIds).slice(0, n);
  return rows.map((r) => ({ ids: r.promptIds, text: tokenizer.decode(r.promptIds, { skipSpecialTokens: true }) }));
}

function answers(model: Decoder, tokenizer: Tokenizer, prompts: DemoPrompt[]): string[] {
  return prompts.map((p) => tokenizer.decode(generate(model, p.ids, { maxNewTokens: 12, temperature: 0 }).slice(p.ids.length), { skipSpecialTokens: true }));
}

/** A trained method's model as a user would load it: the saved full model, or base + adapter. */
function trainedModel(modelDir: string, method: Method, outputDir: string): Decoder {
  if (method === 'full') return AutoModelForCausalLM.fromPretrained(outputDir);
  const base = AutoModelForCausalLM.fromPretrained(modelDir, method === 'qlora' ? { quantizationConfig: QLORA_PRESET } : {});
  return PeftModel.fromPretrained(base, outputDir);
}

