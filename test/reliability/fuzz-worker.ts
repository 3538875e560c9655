// The fuzz loop, run in a worker thread so the test (fuzz.test.ts) can kill it when one
// case hangs. Each iteration mutates one real file (byte flips, truncation, splice, zeroed
// or duplicated runs) with an Rng seeded by (seed, iteration), loads it through the
// library, uses it once, and classifies the outcome: success or a typed FtuneError with a
// hint. Anything else is reported with the seed and mutation and ends the run.
import { parentPort, workerData } from 'node:worker_threads';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AutoModelForCausalLM } from '../../src/models/auto.js';
import type { LlamaForCausalLM } from '../../src/models/llama/model.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { readLlama2cCheckpoint } from '../../src/io/llama2c.js';
import { readLlama2cTokenizer } from '../../src/io/llama2c-tokenizer.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { PeftModel } from '../../src/peft/peft-model.js';
import { BitsAndBytesConfig } from '../../src/quant/config.js';
import { readRows } from '../../src/data/read.js';
import { tokenizeRows } from '../../src/data/dataset.js';
import { memoryStats, resetPeak } from '../../src/tensor/memory.js';
import { scope } from '../../src/tensor/scope.js';
import { Rng } from '../helpers/random.js';
import { copyDir, mutate, tempDir, typedOutcome } from '../helpers/corrupt.js';

export interface FuzzRequest {
  dataDir: string;
  seed: number;
  iterations: number;
}

export type FuzzMessage =
  | { type: 'start'; i: number; kind: string; what: string }
  | { type: 'done'; counts: Record<string, { cases: number; ok: number; typed: number }> }
  | { type: 'fail'; i: number; kind: string; what: string; error: string };

/** One fuzzed input kind: the real file mutated, and how the library loads and uses it. */
interface Target {
  kind: string;
  /** File (relative to the case dir) that gets the mutated bytes. */
  file: string;
  /** Fills a case dir with the unmutated inputs. */
  prepare: (dir: string) => void;
  run: (dir: string) => void;
  /** Mutate only bytes from this offset on (the data section of a safetensors file). */
  dataOnly?: boolean;
}

/** Flips 1-8 random bits in the data section of safetensors bytes (the header kept valid). */
function flipData(rng: Rng, src: Uint8Array): { what: string; bytes: Uint8Array } {
  const start = 8 + Number(new DataView(src.buffer, src.byteOffset, 8).getBigUint64(0, true));
  const out = src.slice();
  const at: number[] = [];
  for (let k = 1 + rng.int(8); k > 0; k--) {
    const p = start + rng.int(out.length - start);
    out[p] = (out[p] ?? 0) ^ (1 << rng.int(8));
    at.push(p);
  }
  return { what: `flip data bits at ${at.join(',')}`, bytes: out };
}

const MAX_ALLOC = 64 * 2 ** 20; // stories260K is ~1 MB; a header trusted blindly would blow past this

function useModel(m: LlamaForCausalLM): void {
  const cache = m.newCache(1, 4);
  try {
    scope(() => m.forward(Int32Array.of(1, 5, 9, 2), 1, cache, 'all'));
  } finally {
    cache.release();
  }
}

function targets(data: string, root: string): Target[] {
  const hf = join(data, 'hf_models', 'stories260K-hf');
  const tokenizer = Tokenizer.fromDir(hf);
  const base = AutoModelForCausalLM.fromPretrained(hf);
  const q4 = join(root, 'q4');
  AutoModelForCausalLM.fromPretrained(hf, { quantizationConfig: BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true }) }).savePretrained(q4);
  const adapter = join(root, 'adapter');
  new PeftModel(AutoModelForCausalLM.fromPretrained(hf), { r: 4, targetModules: ['q_proj', 'v_proj'] }).savePretrained(adapter);
  // The first whole rows of a dataset file, re-serialized in its own layout.
  const rows = (name: string, count: number, ext: string): string => {
    const text = readFileSync(join(data, 'datasets', name), 'utf8');
    if (ext === 'jsonl') return `${text.split('\n').slice(0, count).join('\n')}\n`;
    return JSON.stringify((JSON.parse(text) as unknown[]).slice(0, count), null, 2);
  };
  const dataset = (name: string, count: number, ext: string): Target => ({
    kind: `dataset ${name}`, file: `data.${ext}`,
    prepare: (d) => writeFileSync(join(d, `data.${ext}`), rows(name, count, ext)),
    run: (d) => void tokenizeRows(readRows(join(d, `data.${ext}`)), tokenizer, { path: join(d, `data.${ext}`), maxLength: 256 }),
  });
  const hfFile = (kind: string, file: string, run: (d: string) => void): Target => ({ kind, file, prepare: (d) => copyDir(hf, d), run });
  return [
    hfFile('safetensors', 'model.safetensors', (d) => {
      const f = SafetensorsFile.open(join(d, 'model.safetensors'));
      try {
        for (const name of f.tensors.keys()) f.read(name);
      } finally {
        f.close();
      }
      useModel(AutoModelForCausalLM.fromPretrained(d));
    }),
    hfFile('config.json', 'config.json', (d) => useModel(AutoModelForCausalLM.fromPretrained(d))),
    hfFile('tokenizer.json', 'tokenizer.json', (d) => { const t = Tokenizer.fromDir(d); t.decode(t.encode('Once upon a time, Lily saw ümlauts.')); }),
    hfFile('tokenizer_config.json', 'tokenizer_config.json', (d) => { const t = Tokenizer.fromDir(d); t.decode(t.encode('Lily')); }),
    { kind: 'llama2.c checkpoint', file: 'm.bin', prepare: (d) => copyFileSync(join(data, 'llama2c', 'stories260K.bin'), join(d, 'm.bin')), run: (d) => void readLlama2cCheckpoint(join(d, 'm.bin')) },
    { kind: 'llama2.c tokenizer', file: 't.bin', prepare: (d) => copyFileSync(join(data, 'llama2c', 'tok512.bin'), join(d, 't.bin')), run: (d) => void readLlama2cTokenizer(join(d, 't.bin'), 512) },
    dataset('alpaca_en_demo.json', 6, 'json'),
    dataset('gsm8k_test.jsonl', 6, 'jsonl'),
    dataset('fastchat_dummy_conversation.json', 4, 'json'),
    {
      kind: 'adapter weights', file: 'adapter_model.safetensors', prepare: (d) => copyDir(adapter, d),
      run: (d) => void PeftModel.fromPretrained(base, d).unload(),
    },
    {
      kind: 'adapter config', file: 'adapter_config.json', prepare: (d) => copyDir(adapter, d),
      run: (d) => void PeftModel.fromPretrained(base, d).unload(),
    },
    { kind: '4-bit checkpoint', file: 'model.safetensors', prepare: (d) => copyDir(q4, d), run: (d) => useModel(AutoModelForCausalLM.fromPretrained(d)) },
    { kind: '4-bit tensor data', file: 'model.safetensors', dataOnly: true, prepare: (d) => copyDir(q4, d), run: (d) => useModel(AutoModelForCausalLM.fromPretrained(d)) },
    { kind: 'adapter tensor data', file: 'adapter_model.safetensors', dataOnly: true, prepare: (d) => copyDir(adapter, d), run: (d) => { const p = PeftModel.fromPretrained(base, d); useModel(base); p.unload(); } },
  ];
}

function main(req: FuzzRequest): void {
  const port = parentPort;
  if (port === null) throw new Error('fuzz-worker runs as a worker thread');
  const { dir: root, cleanup } = tempDir('fuzz');
  const counts: Record<string, { cases: number; ok: number; typed: number }> = {};
  try {
    const list = targets(req.dataDir, root);
    const donor = readFileSync(join(req.dataDir, 'llama2c', 'tok512.bin'));
    for (let i = 0; i < req.iterations; i++) {
      const target = list[i % list.length];
      if (target === undefined) continue;
      const rng = new Rng(req.seed * 1_000_003 + i);
      const dir = join(root, `case-${i}`);
      mkdirSync(dir, { recursive: true });
      target.prepare(dir);
      const path = join(dir, target.file);
      const m = target.dataOnly === true ? flipData(rng, readFileSync(path)) : mutate(rng, readFileSync(path), donor);
      writeFileSync(path, m.bytes);
      const context = `seed ${req.seed}, iteration ${i}, ${target.kind}: ${m.what}`;
      port.postMessage({ type: 'start', i, kind: target.kind, what: m.what } satisfies FuzzMessage);
      const before = memoryStats().totalCurrent;
      resetPeak();
      try {
        const outcome = typedOutcome(() => target.run(dir), context);
        const grew = memoryStats().totalPeak - before;
        if (grew > MAX_ALLOC) throw new Error(`allocated ${grew} bytes (${context})`);
        const c = (counts[target.kind] ??= { cases: 0, ok: 0, typed: 0 });
        c.cases++;
        if (outcome.ok) c.ok++;
        else {
          c.typed++;
          if (process.env['FTUNE_FUZZ_VERBOSE'] === '1') process.stderr.write(`${context}\n  -> ${outcome.error.message.split('\n')[0] ?? ''}\n`);
        }
      } catch (e) {
        port.postMessage({ type: 'fail', i, kind: target.kind, what: m.what, error: e instanceof Error ? e.message : String(e) } satisfies FuzzMessage);
        return;
      }
      rmSync(dir, { recursive: true, force: true });
    }
    port.postMessage({ type: 'done', counts } satisfies FuzzMessage);
  } finally {
    cleanup();
  }
}

main(workerData as FuzzRequest);
