// LoRA on real models: PEFT's target matching rules, parameter counts in PEFT's wording,
// init, and the forward invariants (B = 0 is the base model; merged equals unmerged;
// unmerge restores the weights; disabled is the base; adapters switch outputs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/errors.js';
import { Linear } from '../../src/nn/layers.js';
import { getPeftModel, LoraLinear, ModulesToSaveWrapper, type PeftModel } from '../../src/peft/index.js';
import type { LlamaForCausalLM } from '../../src/models/llama/model.js';
import { AutoModelForCausalLM } from '../../src/models/auto.js';
import { bf16ToF32, f32ToBf16 } from '../../src/backend/ref/gemm.js';
import { scope } from '../../src/tensor/scope.js';
import { fixture } from '../helpers/data.js';
import { nativeBackend } from '../../src/backend/index.js';
import { loadStories, logitsOf, maxAbsDiff, randomizeB, randomQwen2 } from './helpers.js';

const PROMPT = [1, 403, 407, 261, 378, 13, 9, 100];
/**
 * Merged vs unmerged logits: merging rounds W + s*B@A to f32 once per weight (an ulp is
 * ~6e-8 at |w| ~ 1) and the 5-layer model carries that to logits of magnitude ~19 as
 * ~1.2e-5 (measured); the same as perturbing W by one ulp.
 */
const MERGE_TOL = 5e-5;
/** unmerge: W + d - d in f32 is W within an ulp or two. */
const UNMERGE_TOL = 1e-6;

function stories(t: Parameters<typeof fixture>[0]): LlamaForCausalLM | undefined {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  return dir === undefined ? undefined : loadStories(dir);
}

function targets(p: PeftModel): string[] {
  return p.loraLayers().map(([path]) => path);
}

test('matching: list entries match by suffix, regex strings by full match, layersToTransform by index', (t) => {
  const load = (): LlamaForCausalLM | undefined => stories(t);
  if (load() === undefined) return;
  const m = (cfg: Parameters<typeof getPeftModel>[1]): string[] => targets(getPeftModel(load() as LlamaForCausalLM, cfg));
  const qv = m({});
  assert.equal(qv.length, 10);
  assert.deepEqual(qv.slice(0, 2), ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj']);
  assert.deepEqual(m({ targetModules: ['self_attn.o_proj'] }), [0, 1, 2, 3, 4].map((i) => `model.layers.${i}.self_attn.o_proj`));
  assert.deepEqual(m({ targetModules: ['model.layers.3.mlp.up_proj'] }), ['model.layers.3.mlp.up_proj']); // exact path
  assert.throws(() => m({ targetModules: ['proj'] }), ConfigError); // "proj" is no "."-suffix of q_proj
  assert.deepEqual(m({ targetModules: 'model\\.layers\\.[12]\\.mlp\\.(gate|down)_proj' }),
    ['model.layers.1.mlp.gate_proj', 'model.layers.1.mlp.down_proj', 'model.layers.2.mlp.gate_proj', 'model.layers.2.mlp.down_proj']);
  assert.throws(() => m({ targetModules: 'q_proj' }), ConfigError); // a regex must match the whole path
  assert.deepEqual(m({ targetModules: ['k_proj'], layersToTransform: [1, 4] }), ['model.layers.1.self_attn.k_proj', 'model.layers.4.self_attn.k_proj']);
  assert.deepEqual(m({ targetModules: ['k_proj'], layersToTransform: 2, layersPattern: 'layers' }), ['model.layers.2.self_attn.k_proj']);
  assert.deepEqual(m({ targetModules: ['k_proj'], excludeModules: ['model.layers.0.self_attn.k_proj'] }).length, 4);
  assert.equal(m({ targetModules: 'all-linear' }).length, 35); // 7 per layer; stories260K ties its head
});

test('matching: all-linear leaves out lm_head; targeting a non-Linear or nothing lists the module names', () => {
  const p = getPeftModel(randomQwen2(1), { targetModules: 'all-linear' });
  const paths = targets(p);
  assert.equal(paths.length, 14);
  assert.ok(!paths.includes('lm_head'));
  assert.deepEqual(p.peftConfig['default']?.targetModules, paths); // expanded to full names, as PEFT saves it
  assert.throws(() => getPeftModel(randomQwen2(1), { targetModules: ['query', 'value'] }), (e: unknown) =>
    e instanceof ConfigError && /targetModules \["query","value"\] matched no module/.test(e.message) &&
    /q_proj, k_proj, v_proj, o_proj/.test(e.message) && /lm_head/.test(e.message) && /model\.layers\.0\./.test(e.message));
  assert.throws(() => getPeftModel(randomQwen2(1), { targetModules: ['mlp'] }), /model\.layers\.0\.mlp \(LlamaMLP\), which is not a Linear/);
  assert.throws(() => getPeftModel(randomQwen2(1), { targetModules: ['lm_head'] }), /output head/);
});

test('rankPattern/alphaPattern set per-module rank and scaling; rsLoRA divides by sqrt(r)', (t) => {
  const base = stories(t);
  if (base === undefined) return;
  const p = getPeftModel(base, { r: 8, loraAlpha: 16, rankPattern: { 'layers.1.self_attn.q_proj': 4 }, alphaPattern: { v_proj: 4 } });
  for (const [path, l] of p.loraLayers()) {
    const { a, b, spec } = l.adapter('default');
    const r = path === 'model.layers.1.self_attn.q_proj' ? 4 : 8;
    const alpha = path.endsWith('v_proj') ? 4 : 16;
    assert.deepEqual([spec.r, spec.alpha, spec.scaling], [r, alpha, alpha / r], path);
    assert.deepEqual(a.weight.shape, [r, l.inFeatures]);
    assert.deepEqual(b.weight.shape, [l.outFeatures, r]);
  }
  const rs = getPeftModel(randomQwen2(2), { r: 16, loraAlpha: 8, useRslora: true });
  assert.equal(rs.loraLayers()[0]?.[1].adapter('default').spec.scaling, 8 / 4);
});

test('printTrainableParameters: r=8 on q_proj, v_proj of stories260K in PEFT wording', (t) => {
  const base = stories(t);
  if (base === undefined) return;
  const c = base.config; // hidden 64, q out 8 heads x 8, v out 4 kv heads x 8, 5 layers
  const baseCount = base.namedParameters().reduce((s, [, w]) => s + w.size, 0);
  const p = getPeftModel(base, { r: 8, targetModules: ['q_proj', 'v_proj'] });
  const perLayer = 8 * (c.hiddenSize + c.numAttentionHeads * c.headDim) + 8 * (c.hiddenSize + c.numKeyValueHeads * c.headDim);
  assert.equal(perLayer, 8 * (64 + 64) + 8 * (64 + 32));
  const trainable = c.numHiddenLayers * perLayer;
  assert.deepEqual(p.countParameters(), { trainable, all: baseCount + trainable });
  assert.equal(p.printTrainableParameters(), 'trainable params: 8,960 || all params: 268,992 || trainable%: 3.3310');
  assert.equal(p.trainableParameters().length, 20);
  assert.equal(p.trainableParameters()[0]?.[0], 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight');
  assert.ok(p.trainableParameters().every(([, w]) => w.dtype === 'f32' && w.category === 'weights'));
});

test('bias and modulesToSave join the trainable parameters', () => {
  const all = getPeftModel(randomQwen2(3), { targetModules: ['q_proj'], bias: 'all' });
  const names = (p: PeftModel): string[] => p.trainableParameters().map(([n]) => n).filter((n) => n.endsWith('bias'));
  assert.equal(names(all).length, 6); // q, k, v biases of 2 layers
  assert.ok(names(all).includes('base_model.model.model.layers.0.self_attn.q_proj.base_layer.bias'));
  const only = getPeftModel(randomQwen2(3), { targetModules: ['q_proj'], bias: 'lora_only' });
  assert.deepEqual(names(only), ['base_model.model.model.layers.0.self_attn.q_proj.base_layer.bias', 'base_model.model.model.layers.1.self_attn.q_proj.base_layer.bias']);
  const saved = getPeftModel(randomQwen2(3), { targetModules: ['q_proj'], modulesToSave: ['lm_head'] });
  assert.ok(saved.baseModel.lm_head instanceof ModulesToSaveWrapper);
  assert.deepEqual(saved.trainableParameters().map(([n]) => n).filter((n) => n.includes('lm_head')), ['base_model.model.lm_head.modules_to_save.default.weight']);
  const { trainable } = saved.countParameters();
  assert.equal(trainable, 2 * 8 * (48 + 48) + 97 * 48);
});

test('init: A kaiming-uniform within 1/sqrt(in), B zero; gaussian A has std 1/r; false makes B random', (t) => {
  const base = stories(t);
  if (base === undefined) return;
  const p = getPeftModel(base, {}, 'default', { seed: 5 });
  const [, l] = p.loraLayers()[0] ?? [];
  assert.ok(l instanceof LoraLinear && l.base_layer instanceof Linear);
  const { a, b } = l.adapter('default');
  const bound = 1 / Math.sqrt(64);
  assert.ok(a.weight.data.every((v) => Math.abs(v) <= bound) && a.weight.data.some((v) => Math.abs(v) > 0.9 * bound));
  assert.ok(b.weight.data.every((v) => v === 0));
  const g = Float32Array.from(getPeftModel(randomQwen2(4), { r: 4, initLoraWeights: 'gaussian' }).loraLayers()[0]?.[1].adapter('default').a.weight.data ?? []);
  const std = Math.sqrt(g.reduce((s, v) => s + v * v, 0) / g.length);
  assert.ok(Math.abs(std - 0.25) < 0.03, `std ${std}`); // 192 samples: sampling error ~5%
  const f = getPeftModel(randomQwen2(4), { r: 4, initLoraWeights: false }).loraLayers()[0]?.[1].adapter('default').b.weight.data ?? new Float32Array();
  assert.ok(f.some((v) => v !== 0) && f.every((v) => Math.abs(v) <= 0.5));
});

test('B = 0: the adapted model outputs exactly the base logits', (t) => {
  const base = stories(t);
  if (base === undefined) return;
  const before = logitsOf(base, PROMPT);
  const p = getPeftModel(base, { r: 8, targetModules: 'all-linear' });
  assert.deepEqual(logitsOf(p, PROMPT), before);
});

test('random B: merged == unmerged, same greedy text; unmerge restores W; disabled == base', (t) => {
  const base = stories(t);
  if (base === undefined) return;
  const baseLogits = logitsOf(base, PROMPT);
  const baseText = base.generate(PROMPT, { maxNewTokens: 24, temperature: 0 });
  const down = base.model.layers[2]?.mlp.down_proj;
  assert.ok(down instanceof Linear);
  const w0 = Float32Array.from(down.weight.data);
  const p = getPeftModel(base, { r: 8, loraAlpha: 16, targetModules: 'all-linear' });
  randomizeB(p.loraLayers(), 'default', 3, 0.02);
  const lora = logitsOf(p, PROMPT);
  assert.ok(maxAbsDiff(lora, baseLogits) > 0.5, 'the adapter changes the logits');
  assert.deepEqual(p.withAdapterDisabled(() => logitsOf(p, PROMPT)), baseLogits);
  const loraText = p.generate(PROMPT, { maxNewTokens: 24, temperature: 0 });
  assert.notDeepEqual(loraText, baseText);
  p.merge();
  assert.ok(maxAbsDiff(logitsOf(p, PROMPT), lora) < MERGE_TOL);
  assert.deepEqual(p.generate(PROMPT, { maxNewTokens: 24, temperature: 0 }), loraText);
  p.unmerge();
  const layer = p.loraLayers().find(([path]) => path === 'model.layers.2.mlp.down_proj')?.[1];
  assert.ok(layer?.base_layer instanceof Linear);
  assert.ok(maxAbsDiff(layer.base_layer.weight.data, w0) < UNMERGE_TOL);
  const merged = p.mergeAndUnload();
  assert.ok(merged.model.layers[2]?.mlp.down_proj instanceof Linear);
  assert.equal(merged.namedParameters().length, base.namedParameters().length);
  assert.ok(!merged.namedParameters().some(([n]) => n.includes('lora_')));
  assert.ok(maxAbsDiff(logitsOf(merged, PROMPT), lora) < MERGE_TOL);
  assert.deepEqual(merged.generate(PROMPT, { maxNewTokens: 24, temperature: 0 }), loraText);
  assert.throws(() => p.generate(PROMPT), /unloaded/);
});

test('bf16 base: merge adds scaling * B @ A in f32 and rounds to bf16 once per weight', (t) => {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  if (dir === undefined) return;
  const model = AutoModelForCausalLM.fromPretrained(dir, { backend: nativeBackend, dtype: 'bf16' });
  const p = getPeftModel(model, { targetModules: ['o_proj'], loraAlpha: 16 });
  randomizeB(p.loraLayers(), 'default', 9, 0.05);
  const [, l] = p.loraLayers()[1] ?? [];
  assert.ok(l instanceof LoraLinear && l.base_layer instanceof Linear && l.base_layer.weight.dtype === 'bf16');
  const w = l.base_layer.weight;
  const before = Uint16Array.from(w.data);
  const delta = scope(() => Float32Array.from(l.deltaWeight(p.backend, 'default').data));
  p.merge();
  let changed = 0;
  before.forEach((h, i) => {
    const want = f32ToBf16(Math.fround(bf16ToF32(h) + (delta[i] ?? NaN)));
    assert.equal(w.data[i], want, `weight ${i}`);
    if (want !== h) changed++;
  });
  assert.ok(changed > before.length / 2, `${changed} weights changed`);
});

test('two named adapters: setAdapter switches outputs; only the active one trains', (t) => {
  const base = stories(t);
  if (base === undefined) return;
  const baseLogits = logitsOf(base, PROMPT);
  const p = getPeftModel(base, { r: 4, targetModules: ['q_proj', 'v_proj'] });
  p.addAdapter('other', { r: 2, targetModules: ['o_proj'] }, { seed: 1 });
  assert.deepEqual(p.adapterNames, ['default', 'other']);
  assert.equal(p.activeAdapter, 'default');
  randomizeB(p.loraLayers().filter(([path]) => !path.endsWith('o_proj')), 'default', 1, 0.02);
  randomizeB(p.loraLayers().filter(([path]) => path.endsWith('o_proj')), 'other', 2, 0.02);
  const a = logitsOf(p, PROMPT);
  p.setAdapter('other');
  const b = logitsOf(p, PROMPT);
  assert.ok(maxAbsDiff(a, b) > 0.1 && maxAbsDiff(b, baseLogits) > 0.1);
  assert.ok(p.trainableParameters().every(([n]) => n.includes('.other.')));
  assert.equal(p.trainableParameters().length, 10);
  p.setAdapter('default');
  assert.deepEqual(logitsOf(p, PROMPT), a);
  assert.throws(() => p.setAdapter('nope'), /no adapter named "nope"[\s\S]*default, other/);
  assert.throws(() => p.addAdapter('other', {}), /already exists/);
});
