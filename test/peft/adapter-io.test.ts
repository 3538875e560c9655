// PEFT adapter directories: the exact adapter_config.json text, safetensors keys, dtypes,
// shapes and metadata bytes; save -> load round trips; loading errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '../../src/errors.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { getPeftModel, PeftModel } from '../../src/peft/index.js';
import { fixture } from '../helpers/data.js';
import { loadStories, logitsOf, randomizeB, randomQwen2 } from './helpers.js';

const PROMPT = [1, 403, 407, 261, 378, 13];

/** CPython json.dumps(asdict(config), indent=2, sort_keys=True) of PEFT 0.19.1 for this config. */
const GOLDEN_CONFIG = `{
  "alora_invocation_tokens": null,
  "alpha_pattern": {
    "v_proj": 32
  },
  "arrow_config": null,
  "auto_mapping": null,
  "base_model_name_or_path": "stories260K-hf",
  "bias": "none",
  "corda_config": null,
  "ensure_weight_tying": false,
  "eva_config": null,
  "exclude_modules": null,
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "layer_replication": null,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": 16,
  "lora_bias": false,
  "lora_dropout": 0.05,
  "lora_ga_config": null,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "peft_type": "LORA",
  "peft_version": "0.19.1",
  "qalora_group_size": 16,
  "r": 8,
  "rank_pattern": {
    "model.layers.1.self_attn.q_proj": 4
  },
  "revision": null,
  "target_modules": [
    "q_proj",
    "v_proj"
  ],
  "target_parameters": null,
  "task_type": "CAUSAL_LM",
  "trainable_token_indices": null,
  "use_bdlora": null,
  "use_dora": false,
  "use_qalora": false,
  "use_rslora": false
}`;

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ftune-peft-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const CONFIG = {
  r: 8, loraAlpha: 16, loraDropout: 0.05, targetModules: ['v_proj', 'q_proj'],
  rankPattern: { 'model.layers.1.self_attn.q_proj': 4 }, alphaPattern: { v_proj: 32 }, baseModelNameOrPath: 'stories260K-hf',
};

test('savePretrained writes adapter_config.json exactly as PEFT and the tensors PEFT names', (t) => {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  if (dir === undefined) return;
  const out = tempDir(t);
  // As loaded by from_pretrained("stories260K-hf"): the base model's name goes to the config.
  const p = getPeftModel(Object.assign(loadStories(dir), { nameOrPath: 'stories260K-hf' }), CONFIG);
  p.savePretrained(out);
  assert.equal(readFileSync(join(out, 'adapter_config.json'), 'utf8'), GOLDEN_CONFIG);
  const bytes = readFileSync(join(out, 'adapter_model.safetensors'));
  const n = Number(bytes.readBigUInt64LE(0));
  const header = bytes.subarray(8, 8 + n).toString('utf8');
  assert.ok(header.startsWith('{"__metadata__":{"format":"pt"},"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":{"dtype":"F32","shape":[8,64],'), header.slice(0, 160));
  const f = SafetensorsFile.open(join(out, 'adapter_model.safetensors'));
  t.after(() => f.close());
  assert.deepEqual({ ...f.metadata }, { format: 'pt' });
  assert.equal(f.tensors.size, 20);
  for (let i = 0; i < 5; i++) {
    const r = i === 1 ? 4 : 8;
    const at = (s: string): number[] | undefined => f.tensors.get(`base_model.model.model.layers.${i}.self_attn.${s}.weight`)?.shape;
    assert.deepEqual([at('q_proj.lora_A'), at('q_proj.lora_B'), at('v_proj.lora_A'), at('v_proj.lora_B')], [[r, 64], [64, r], [8, 64], [32, 8]]);
  }
  assert.ok([...f.tensors.values()].every((x) => x.dtype === 'F32'));
  const a0 = p.loraLayers()[0]?.[1].adapter('default').a.weight;
  assert.deepEqual(new Float32Array(f.read('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight').buffer), a0?.data);
});

test('save -> fromPretrained gives identical tensors and logits; non-default adapters live in a sub-directory', (t) => {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  if (dir === undefined) return;
  const out = tempDir(t);
  const p = getPeftModel(loadStories(dir), CONFIG);
  p.addAdapter('second', { r: 2, targetModules: ['o_proj'] }, { seed: 4 });
  randomizeB(p.loraLayers().filter(([path]) => !path.endsWith('o_proj')), 'default', 1, 0.02);
  randomizeB(p.loraLayers().filter(([path]) => path.endsWith('o_proj')), 'second', 2, 0.02);
  const want = logitsOf(p, PROMPT);
  p.setAdapter('second');
  const want2 = logitsOf(p, PROMPT);
  p.savePretrained(out);
  assert.ok(existsSync(join(out, 'second', 'adapter_config.json')) && existsSync(join(out, 'second', 'adapter_model.safetensors')));
  assert.match(readFileSync(join(out, 'second', 'adapter_config.json'), 'utf8'), /"target_modules": \[\n {4}"o_proj"\n {2}\]/);

  const q = PeftModel.fromPretrained(loadStories(dir), out);
  assert.deepEqual(logitsOf(q, PROMPT), want);
  const named = (m: PeftModel): Map<string, Float32Array> => new Map(m.namedParameters().filter(([n]) => n.includes('lora_')).map(([n, w]) => [n, Float32Array.from(w.data)]));
  const src = named(p);
  for (const [n, w] of named(q)) assert.deepEqual(w, src.get(n), n);
  assert.equal(q.trainableParameters().length, 0); // inference mode, as PEFT loads by default
  assert.equal(q.peftConfig['default']?.inferenceMode, true);
  q.loadAdapter(join(out, 'second'), 'second');
  q.setAdapter('second');
  assert.deepEqual(logitsOf(q, PROMPT), want2);

  const trainable = PeftModel.fromPretrained(loadStories(dir), join(out, 'second'), { adapterName: 'second', isTrainable: true });
  assert.equal(trainable.activeAdapter, 'second');
  assert.equal(trainable.trainableParameters().length, 10);
  assert.deepEqual(logitsOf(trainable, PROMPT), want2);
});

test('bias "all" and modulesToSave are saved under PEFT keys and load back', (t) => {
  const out = tempDir(t);
  const p = getPeftModel(Object.assign(randomQwen2(5), { nameOrPath: 'org/qwen2-tiny' }), { targetModules: ['q_proj'], bias: 'all', modulesToSave: ['lm_head'] });
  randomizeB(p.loraLayers(), 'default', 3, 0.1);
  const head = p.baseModel.lm_head?.weight;
  head?.data.fill(0.01); // the trained copy, not the original
  const want = logitsOf(p, PROMPT.map((i) => i % 97));
  p.savePretrained(out);
  const text = readFileSync(join(out, 'adapter_config.json'), 'utf8');
  assert.match(text, /"base_model_name_or_path": "org\/qwen2-tiny",\n/); // from the model's nameOrPath
  assert.match(text, /"modules_to_save": \[\n {4}"lm_head"\n {2}\],\n/);
  assert.match(text, /"bias": "all",\n/);
  const f = SafetensorsFile.open(join(out, 'adapter_model.safetensors'));
  const keys = [...f.tensors.keys()];
  f.close();
  assert.ok(keys.includes('base_model.model.lm_head.weight'));
  assert.ok(keys.includes('base_model.model.model.layers.0.self_attn.q_proj.base_layer.bias'));
  assert.ok(keys.includes('base_model.model.model.layers.1.self_attn.k_proj.bias'));
  assert.equal(keys.length, 4 + 6 + 1);
  const q = PeftModel.fromPretrained(randomQwen2(5), out);
  assert.deepEqual(logitsOf(q, PROMPT.map((i) => i % 97)), want);
});

test('loading errors: missing files, wrong peft_type, an adapter for another base model', (t) => {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  if (dir === undefined) return;
  const out = tempDir(t);
  const isFormat = (re: RegExp) => (e: unknown): boolean => e instanceof FormatError && re.test(e.message) && e.hint.length > 0;
  assert.throws(() => PeftModel.fromPretrained(loadStories(dir), out), isFormat(/adapter_config\.json is missing/));
  getPeftModel(loadStories(dir), { targetModules: ['q_proj', 'k_proj'] }).savePretrained(out);

  // A random Qwen2-style model: hidden 48, 2 layers; stories260K's q_proj A is [8, 64].
  const other = randomQwen2(6);
  assert.throws(() => PeftModel.fromPretrained(other, out),
    isFormat(/adapter_model\.safetensors: tensor base_model\.model\.model\.layers\.0\.self_attn\.k_proj\.lora_A\.weight has shape \[8, 64\], this base model needs \[8, 48\][\s\S]*another base model/));
  assert.ok(!other.namedParameters().some(([n]) => n.includes('lora_')), 'a failed load leaves the base model untouched');

  const cfgPath = join(out, 'adapter_config.json');
  const cfg = readFileSync(cfgPath, 'utf8');
  writeFileSync(cfgPath, cfg.replace('"target_modules": [\n    "k_proj",\n    "q_proj"\n  ]', '"target_modules": [\n    "gate_proj"\n  ]'));
  assert.throws(() => PeftModel.fromPretrained(loadStories(dir), out), isFormat(/k_proj\.lora_A\.weight does not belong to any adapted module/));
  writeFileSync(cfgPath, cfg.replace('"target_modules": [\n    "k_proj",\n    "q_proj"\n  ]', '"target_modules": [\n    "c_attn"\n  ]'));
  assert.throws(() => PeftModel.fromPretrained(loadStories(dir), out), isFormat(/adapter_config\.json: LoraConfig\.targetModules \["c_attn"\] matched no module/));
  writeFileSync(cfgPath, cfg.replace('"peft_type": "LORA"', '"peft_type": "PREFIX_TUNING"'));
  assert.throws(() => PeftModel.fromPretrained(loadStories(dir), out), isFormat(/peft_type "PREFIX_TUNING" is not supported/));
  writeFileSync(cfgPath, cfg);
  rmSync(join(out, 'adapter_model.safetensors'));
  assert.throws(() => PeftModel.fromPretrained(loadStories(dir), out), isFormat(/adapter_model\.safetensors is missing/));
});
