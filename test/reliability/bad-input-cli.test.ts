// Bad input through the CLI, as a user meets it: for a representative case of each input
// kind (and bad flags and config files) the exit code is 1, stderr is "error: ..." with a
// "hint:" and no stack trace (unless --debug), and nothing in the output directory or
// next to it was created or changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fixture } from '../helpers/data.js';
import { copyDir, editJson, snapshot, tempDir, truncateFile } from '../helpers/corrupt.js';

const CLI = resolve('dist/src/cli/main.js');

function ftune(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, FTUNE_THREADS: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface CliCase {
  name: string;
  /** Breaks the prepared files in root (model/, data.jsonl, adapter/, cfg.yaml). */
  build: (root: string) => void;
  args: (root: string) => string[];
  message: RegExp;
}

const model = (r: string): string => join(r, 'model');
const out = (r: string): string => join(r, 'out');
/** An output dir that does not exist yet: a failed run must not create it. */
const fresh = (r: string): string => join(r, 'new');

const CASES: CliCase[] = [
  { name: 'unknown flag', build: () => undefined, args: (r) => ['generate', '--model', model(r), '--promt', 'x'], message: /Unknown option '--promt'/ },
  { name: 'non-numeric flag', build: () => undefined, args: (r) => ['generate', '--model', model(r), '--prompt', 'x', '--max-new-tokens', 'lots'], message: /--max-new-tokens lots/ },
  { name: 'unknown --method', build: () => undefined, args: (r) => ['train', '--model', model(r), '--data', join(r, 'data.jsonl'), '--method', 'magic', '--output', out(r)], message: /--method magic is not supported/ },
  { name: 'config file with an unknown key', build: (r) => writeFileSync(join(r, 'cfg.yaml'), 'learning-rate: 3\n'), args: (r) => ['train', '--config', join(r, 'cfg.yaml'), '--model', model(r), '--data', join(r, 'data.jsonl'), '--output', out(r)], message: /unknown key "learning-rate"/ },
  { name: 'config file that is not YAML', build: (r) => writeFileSync(join(r, 'cfg.yaml'), 'lr: [1, 2\n'), args: (r) => ['train', '--config', join(r, 'cfg.yaml'), '--model', model(r), '--data', join(r, 'data.jsonl'), '--output', out(r)], message: /--config/ },
  { name: 'config file value of the wrong type', build: (r) => writeFileSync(join(r, 'cfg.yaml'), 'bf16: "yes"\n'), args: (r) => ['train', '--config', join(r, 'cfg.yaml'), '--model', model(r), '--data', join(r, 'data.jsonl'), '--output', out(r)], message: /"bf16" must be true or false/ },
  { name: 'truncated safetensors', build: (r) => truncateFile(join(model(r), 'model.safetensors'), -7), args: (r) => ['generate', '--model', model(r), '--prompt', 'x'], message: /data truncated/ },
  { name: 'config.json field of the wrong type', build: (r) => editJson(join(model(r), 'config.json'), (j) => { j['num_hidden_layers'] = 'five'; }), args: (r) => ['quantize', '--model', model(r), '--output', fresh(r)], message: /"num_hidden_layers" must be a number/ },
  { name: 'corrupt tokenizer.json', build: (r) => truncateFile(join(model(r), 'tokenizer.json'), 100), args: (r) => ['generate', '--model', model(r), '--prompt', 'x'], message: /tokenizer.json: not valid JSON/ },
  { name: 'corrupt tokenizer_config.json', build: (r) => writeFileSync(join(model(r), 'tokenizer_config.json'), '{"eos_token": 2}'), args: (r) => ['generate', '--model', model(r), '--prompt', 'x'], message: /field "eos_token" is 2/ },
  { name: 'empty dataset', build: (r) => writeFileSync(join(r, 'data.jsonl'), ''), args: (r) => ['train', '--model', model(r), '--data', join(r, 'data.jsonl'), '--output', out(r), '--max-steps', '1'], message: /empty dataset/ },
  { name: 'dataset with invalid UTF-8', build: (r) => writeFileSync(join(r, 'data.jsonl'), Buffer.from([0x7b, 0x22, 0x74, 0x65, 0x78, 0x74, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])), args: (r) => ['train', '--model', model(r), '--data', join(r, 'data.jsonl'), '--output', out(r), '--max-steps', '1'], message: /data.jsonl:1: invalid UTF-8/ },
  { name: 'adapter for another configuration', build: (r) => editJson(join(r, 'adapter', 'adapter_config.json'), (j) => { j['r'] = 16; }), args: (r) => ['merge', '--model', model(r), '--adapter', join(r, 'adapter'), '--output', fresh(r)], message: /this base model needs \[16, 64\]/ },
  { name: 'llama2.c checkpoint with a bad header', build: (r) => writeFileSync(join(r, 'x.bin'), Buffer.alloc(64, 0xff)), args: (r) => ['convert-llama2c', '--checkpoint', join(r, 'x.bin'), '--tokenizer', join(r, 'x.bin'), '--output', fresh(r)], message: /header field dim = -1/ },
];

/** A model copy, a small dataset, a valid adapter (written by an earlier CLI-free step), and an output dir holding a user file. */
function prepare(root: string, src: string, adapter: string): void {
  copyDir(src, model(root));
  writeFileSync(join(root, 'data.jsonl'), '{"text": "Once upon a time"}\n{"text": "Lily went home"}\n');
  copyDir(adapter, join(root, 'adapter'));
  mkdirSync(out(root));
  writeFileSync(join(out(root), 'notes.txt'), 'the user wrote this before the run\n');
}

test('CLI: bad input exits 1 with error + hint, no stack trace, nothing written', async (t) => {
  const src = fixture(t, 'hf_models', 'stories260K-hf');
  if (src === undefined) return;
  const { dir: base, cleanup } = tempDir('cli-bad');
  try {
    // A real adapter for the merge case, saved through the library.
    const { AutoModelForCausalLM } = await import('../../src/models/auto.js');
    const { PeftModel } = await import('../../src/peft/peft-model.js');
    new PeftModel(AutoModelForCausalLM.fromPretrained(src), { r: 4, targetModules: ['q_proj'] }).savePretrained(join(base, 'adapter-src'));
    const failures: string[] = [];
    for (const [i, c] of CASES.entries()) {
      const root = join(base, `case-${i}`);
      mkdirSync(root);
      prepare(root, src, join(base, 'adapter-src'));
      c.build(root);
      const before = snapshot(root);
      const r = ftune(c.args(root));
      const problems: string[] = [];
      if (r.code !== 1) problems.push(`exit code ${String(r.code)}`);
      if (!r.stderr.startsWith('error: ')) problems.push('stderr does not start with "error: "');
      if (!/\nhint: \S/.test(r.stderr)) problems.push('no hint');
      if (/^\s+at /m.test(r.stderr)) problems.push('stack trace without --debug');
      if (!c.message.test(r.stderr)) problems.push(`stderr does not match ${String(c.message)}`);
      const after = snapshot(root);
      if (JSON.stringify([...after]) !== JSON.stringify([...before])) problems.push('files under the case dir changed');
      if (existsSync(fresh(root))) problems.push('the new output dir was created');
      const strays = readdirSync(root).filter((f) => f.startsWith('.'));
      if (strays.length > 0) problems.push(`stray files: ${strays.join(', ')}`);
      if (problems.length > 0) failures.push(`${c.name}: ${problems.join('; ')}\n${r.stderr}`);
    }
    assert.deepEqual(failures, []);
    t.diagnostic(`CLI cases: ${CASES.length}`);
  } finally {
    cleanup();
  }
});

test('CLI: --debug adds the stack trace to the same error', (t) => {
  const src = fixture(t, 'hf_models', 'stories260K-hf');
  if (src === undefined) return;
  const { dir, cleanup } = tempDir('cli-debug');
  try {
    copyDir(src, join(dir, 'model'));
    truncateFile(join(dir, 'model', 'config.json'), 10);
    const r = ftune(['generate', '--model', join(dir, 'model'), '--prompt', 'x', '--debug']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FormatError: .*config.json: invalid JSON/);
    assert.match(r.stderr, /^\s+at /m);
  } finally {
    cleanup();
  }
});
