// The demo's base model: a small Llama (random init, N(0, 0.02) as Transformers does)
// pretrained briefly on the synthetic language, saved as an ordinary HF directory
// (config.json, model.safetensors, tokenizer files) under the cache, keyed by a hash of
// everything that determines it, so later runs load it instead of training again.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { nativeBackend } from '../backend/index.js';
import { tokenizeRows } from '../data/index.js';
import { packExamples } from '../data/index.js';
import { llamaConfigFromHf } from '../models/llama/config.js';
import { LlamaForCausalLM, type WeightSource } from '../models/llama/model.js';
import { Tensor } from '../tensor/tensor.js';
import { AutoTokenizer } from '../tokenizer/tokenizer.js';
import type { TrainerCallback } from '../train/callbacks.js';
import { Trainer } from '../train/trainer.js';
import { Rng } from '../util/rng.js';
import { pretrainingTexts, WORDS } from './corpus.js';
import { BOS_ID, EOS_ID, PAD_ID, vocabulary, writeTokenizerFiles } from './tokenizer-files.js';

/** What determines the base model (its cache key). */
export interface BaseSpec {
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  /** Pretraining rows of 3-6 sentences, optimizer steps, rows per step, tokens per packed row. */
  rows: number;
  steps: number;
  batch: number;
  seq: number;
  lr: number;
  seed: number;
}

export const DEMO_BASE: BaseSpec = { hidden: 128, layers: 4, heads: 4, intermediate: 384, rows: 12000, steps: 1200, batch: 16, seq: 64, lr: 3e-3, seed: 1 };
export const QUICK_BASE: BaseSpec = { hidden: 64, layers: 2, heads: 4, intermediate: 192, rows: 600, steps: 30, batch: 16, seq: 64, lr: 5e-3, seed: 1 };

/** Bumped when the corpus or the tokenizer changes, so stale caches are not reused. */
const CORPUS_VERSION = 2;

export function cacheRoot(): string {
  return process.env['FTUNE_CACHE'] ?? join(homedir(), '.cache', 'ftune');
}

export function baseDir(spec: BaseSpec, root = cacheRoot()): string {
  const key = createHash('sha256').update(JSON.stringify({ ...spec, v: CORPUS_VERSION })).digest('hex').slice(0, 12);
  return join(root, 'demo', `base-${key}`);
}

function hfConfig(spec: BaseSpec, vocabSize: number): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: vocabSize, hidden_size: spec.hidden,
    intermediate_size: spec.intermediate, num_hidden_layers: spec.layers, num_attention_heads: spec.heads, num_key_value_heads: spec.heads,
    head_dim: spec.hidden / spec.heads, max_position_embeddings: 256, rms_norm_eps: 1e-5, rope_theta: 10000, hidden_act: 'silu',
    attention_bias: false, mlp_bias: false, tie_word_embeddings: true, bos_token_id: BOS_ID, eos_token_id: EOS_ID, pad_token_id: PAD_ID,
    initializer_range: 0.02, torch_dtype: 'float32',
  };
}

/** Weights drawn from N(0, 0.02), norms 1 (Transformers' LlamaPreTrainedModel._init_weights). */
function randomWeights(seed: number): WeightSource {
  const rng = new Rng(seed);
  return (_name, shape, role) => {
    const t = Tensor.empty(shape, 'f32', 'weights'); // filled in place: no JavaScript temporary
    return role === 'norm' ? (t.data.fill(1), t) : (rng.fillNormals(t.data, 0.02), t);
  };
}

export interface BuiltBase {
  dir: string;
  /** false when the directory came from the cache. */
  trained: boolean;
  seconds: number;
}

/**
 * The pretrained base directory for `spec`: from the cache when present, else built
 * (tokenizer files, random init, `spec.steps` steps of pretraining) in a staging
 * directory and renamed into place.
 */
export function buildBaseModel(spec: BaseSpec, callbacks: TrainerCallback[] = [], root = cacheRoot()): BuiltBase {
  const dir = baseDir(spec, root);
  if (existsSync(join(dir, 'model.safetensors')) && existsSync(join(dir, 'tokenizer.json'))) return { dir, trained: false, seconds: 0 };
  const started = performance.now();
  const staging = `${dir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    const vocab = vocabulary(WORDS);
    writeTokenizerFiles(staging, vocab);
    const config = hfConfig(spec, vocab.length);
    writeFileSync(join(staging, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    const tokenizer = AutoTokenizer.fromPretrainedSync(staging);
    const rows = pretrainingTexts(spec.rows, spec.seed).map((text, i) => ({ row: { text }, line: i + 1 }));
    const examples = packExamples(tokenizeRows(rows, tokenizer, { path: 'demo pretraining corpus', format: 'text', maxLength: spec.seq }), spec.seq, EOS_ID);
    const model = new LlamaForCausalLM(llamaConfigFromHf(config), randomWeights(spec.seed), nativeBackend);
    const trainer = new Trainer({
      model, tokenizer, trainDataset: examples, callbacks,
      args: {
        outputDir: staging, maxSteps: spec.steps, perDeviceTrainBatchSize: spec.batch, learningRate: spec.lr, lrSchedulerType: 'cosine',
        warmupSteps: Math.max(1, Math.floor(spec.steps / 20)), saveStrategy: 'no', loggingSteps: 10, seed: spec.seed, weightDecay: 0.01,
      },
    });
    trainer.train();
    trainer.saveModel(staging);
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw e;
  }
  return { dir, trained: true, seconds: (performance.now() - started) / 1000 };
}
