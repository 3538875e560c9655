// `ftune compare`: trains each method (full, LoRA, QLoRA) on the same data, batches,
// steps, schedule and seed, one child process per method (so each peak RSS is that
// method's own), then writes report.md, report.json and a self-contained report.html in
// --output and prints the table on stdout. `--worker SPEC` is the child's entry point.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, IoError } from '../../errors.js';
import { qualityGaps, GAP_TOLERANCE, markdownReport, reportJson, textTable } from '../../compare/report.js';
import { htmlReport } from '../../compare/report-html.js';
import { runMethod } from '../../compare/run-method.js';
import type { CompareReport, MethodResult } from '../../compare/types.js';
import { AutoTokenizer } from '../../tokenizer/tokenizer.js';
import { numberFlag, required, type CliIo, type Command, type FlagValues } from '../command.js';
import { ProgressBar } from '../progress.js';
import {
  DATA_FLAGS, LORA_FLAGS, METHODS, TRAINING_FLAGS, loadBase, loraModel, parseMethod, readDatasets, trainingArgs, type Method,
} from './train-setup.js';

const CLI_MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

/** The flags compare shares with train (and demo shares with compare). */
export const COMPARE_FLAGS = {
  methods: { type: 'string', arg: 'LIST', help: 'methods to compare, in order', default: 'full,lora,qlora' },
  ...LORA_FLAGS,
  ...TRAINING_FLAGS,
  'logging-steps': { type: 'string', arg: 'N', help: 'record the training loss every N steps (the loss curves)', default: '1' },
  'full-lr': { type: 'string', arg: 'F', help: 'learning rate for full fine-tuning (default: --lr if given, else 5e-5)' },
  'exact-match-rows': { type: 'string', arg: 'N', help: 'eval rows with a reference answer scored by greedy generation, at most', default: '32' },
  'gen-tokens': { type: 'string', arg: 'N', help: 'tokens generated to measure generation speed', default: '64' },
} satisfies Command['flags'];

interface WorkerSpec {
  method: Method;
  values: FlagValues;
  saveDir: string;
  resultPath: string;
}

export const compareCommand: Command = {
  name: 'compare',
  summary: 'train full, LoRA and QLoRA on the same data and compare memory, speed and quality',
  usage: 'ftune compare --model DIR --data FILE [--eval-data FILE | --val-split F] [--methods full,lora,qlora] [training flags] --output DIR',
  flags: {
    model: { type: 'string', arg: 'DIR', help: 'base model directory (HF layout)' },
    ...DATA_FLAGS,
    ...COMPARE_FLAGS,
    output: { type: 'string', arg: 'DIR', help: 'report.md, report.json, report.html and one folder per method go here' },
    config: { type: 'string', arg: 'FILE', help: 'YAML or JSON file of flag values (flags given here win)' },
    worker: { type: 'string', arg: 'SPEC', help: 'internal: run one method from a spec file (compare starts these itself)' },
  },
  run(values, io) {
    if (typeof values['worker'] === 'string') {
      runWorker(values['worker'], io);
      return;
    }
    const report = runCompare('compare', values, io);
    io.stdout(textTable(report.methods));
  },
};

export function parseMethods(value: unknown): Method[] {
  const list = String(value ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new ConfigError('--methods is empty', `list some of ${METHODS.join(', ')}, e.g. --methods full,lora,qlora`);
  const methods = list.map(parseMethod);
  if (new Set(methods).size !== methods.length) throw new ConfigError(`--methods ${String(value)} names a method twice`, 'list each method once');
  return methods;
}

/** Runs every method in its own process, writes the three reports into --output; returns the report. */
export function runCompare(cmd: string, values: FlagValues, io: CliIo): CompareReport {
  const model = required(values, cmd, 'model');
  const data = required(values, cmd, 'data');
  const output = required(values, cmd, 'output');
  const methods = parseMethods(values['methods']);
  for (const name of ['exact-match-rows', 'gen-tokens']) numberFlag(values, cmd, name, 'a non-negative integer', (n) => Number.isInteger(n) && n >= 0);
  mkdirSync(output, { recursive: true });
  const results: MethodResult[] = [];
  for (const method of methods) {
    const dir = join(output, method);
    mkdirSync(dir, { recursive: true });
    const saveDir = join(dir, method === 'full' ? 'model' : 'adapter');
    const spec: WorkerSpec = { method, values: { ...values, worker: undefined }, saveDir, resultPath: join(dir, 'result.json') };
    const specPath = join(dir, 'spec.json');
    writeFileSync(specPath, `${JSON.stringify(spec, null, 2)}\n`);
    io.stderr(`== ${method} ==\n`);
    const child = spawnSync(process.execPath, [CLI_MAIN, 'compare', '--worker', specPath], { stdio: ['ignore', 'ignore', 'inherit'], env: process.env });
    if (child.status !== 0) {
      throw new IoError(`ftune compare: the ${method} run failed (exit ${String(child.status ?? child.signal)})`, 'its error is printed above; rerun that method alone with ftune train to debug it');
    }
    results.push(JSON.parse(readFileSync(spec.resultPath, 'utf8')) as MethodResult);
  }
  const settings: Record<string, string | number | boolean> = {};
  for (const key of Object.keys({ ...COMPARE_FLAGS, 'max-length': 0, packing: 0, 'train-on-prompt': 0, 'val-split': 0 })) {
    const v = values[key];
    if (v !== undefined && key !== 'methods') settings[key] = v;
  }
  const evalData = typeof values['eval-data'] === 'string' ? values['eval-data'] : null;
  const report: CompareReport = { model, data, evalData, settings, methods: results, gaps: qualityGaps(results), tolerance: GAP_TOLERANCE, createdAt: new Date().toISOString() };
  writeFileSync(join(output, 'report.json'), reportJson(report));
  writeFileSync(join(output, 'report.md'), markdownReport(report));
  writeFileSync(join(output, 'report.html'), htmlReport(report));
  io.stderr(`wrote ${join(output, 'report.md')}, report.json and report.html\n`);
  return report;
}

function runWorker(specPath: string, io: CliIo): void {
  const spec = JSON.parse(readFileSync(specPath, 'utf8')) as WorkerSpec;
  const cmd = 'compare';
  const { method } = spec;
  const values: FlagValues = { ...spec.values };
  if (method === 'full' && typeof values['full-lr'] === 'string') values['lr'] = values['full-lr'];
  const seed = numberFlag(values, cmd, 'seed', 'an integer', Number.isInteger) ?? 42;
  const modelDir = required(values, cmd, 'model');
  const tokenizer = AutoTokenizer.fromPretrainedSync(modelDir);
  const data = readDatasets(cmd, values, tokenizer, seed);
  const base = loadBase(modelDir, method, values);
  const peft = method === 'full' ? undefined : loraModel(cmd, base, values, seed);
  if (peft !== undefined) io.stderr(`${peft.printTrainableParameters()}\n`);
  const args = { ...trainingArgs(cmd, values, method, spec.saveDir, seed, data.eval !== undefined), saveStrategy: 'no' as const, loadBestModelAtEnd: false };
  const result = runMethod({
    method, base, peft, tokenizer, train: data.train, eval: data.eval, args, saveDir: spec.saveDir,
    exactMatchRows: numberFlag(values, cmd, 'exact-match-rows', 'a non-negative integer', (n) => Number.isInteger(n) && n >= 0) ?? 32,
    genTokens: numberFlag(values, cmd, 'gen-tokens', 'a non-negative integer', (n) => Number.isInteger(n) && n >= 0) ?? 64,
    callbacks: [new ProgressBar(io.stderr, process.stderr.isTTY === true)],
    onPhase: (p) => io.stderr(`[${method}] ${p}\n`),
  });
  writeFileSync(spec.resultPath, `${JSON.stringify(result)}\n`);
}
