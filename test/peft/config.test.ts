// LoraConfig: defaults, validation errors, the Python-compatible JSON writer (goldens
// printed by CPython 3 json.dumps / repr / format) and adapter_config.json mapping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, FormatError } from '../../src/errors.js';
import { LORA_DEFAULTS, LoraConfig, loraConfigFromHf, loraConfigToHf } from '../../src/peft/config.js';
import { PyFloat, pyFixed, pyFloatRepr, pyJsonDumps } from '../../src/io/py-json.js';

test('pyFloatRepr matches Python repr() for floats', () => {
  // Printed by CPython: repr(x) for each x.
  const cases: Array<[number, string]> = [
    [0.05, '0.05'], [1, '1.0'], [0, '0.0'], [1e-5, '1e-05'], [1e-4, '0.0001'], [1e16, '1e+16'], [1.5e16, '1.5e+16'],
    [123.456, '123.456'], [1e-7, '1e-07'], [2.5e-5, '2.5e-05'], [1e22, '1e+22'], [0.1 + 0.2, '0.30000000000000004'],
    [12345678901234567, '1.2345678901234568e+16'], [-0.5, '-0.5'],
  ];
  for (const [x, want] of cases) assert.equal(pyFloatRepr(x), want, `repr(${x})`);
});

test('pyFixed rounds like Python format(x, ".4f"), ties to even', () => {
  assert.equal(pyFixed(0.03125, 4), '0.0312'); // exact tie: Python rounds to even
  assert.equal(pyFixed(0.00125, 4), '0.0013'); // 0.00125 is slightly above the tie in binary
  assert.equal(pyFixed((100 * 8960) / 268992, 4), '3.3310');
});

test('pyJsonDumps = json.dumps(indent=2, sort_keys=True, ensure_ascii=True)', () => {
  const value = { b: [1, new PyFloat(0), 'h\u00e9llo \u007f \u{1F600} "q" \\ /\n\t\u0001'], a: {}, c: [], d: { z: null, y: true } };
  // Printed by CPython json.dumps(..., indent=2, sort_keys=True).
  const want = '{\n  "a": {},\n  "b": [\n    1,\n    0.0,\n    "h\\u00e9llo \\u007f \\ud83d\\ude00 \\"q\\" \\\\ /\\n\\t\\u0001"\n  ],\n  "c": [],\n  "d": {\n    "y": true,\n    "z": null\n  }\n}';
  assert.equal(pyJsonDumps(value), want);
});

test('LoraConfig fills PEFT defaults and rejects bad fields naming them', () => {
  const c = LoraConfig({ r: 16 });
  assert.equal(c.r, 16);
  assert.equal(c.loraAlpha, LORA_DEFAULTS.loraAlpha);
  assert.equal(c.loraDropout, 0);
  assert.equal(c.bias, 'none');
  assert.equal(c.targetModules, null);
  assert.equal(LoraConfig({ r: undefined }).r, 8);
  const bad: Array<[Partial<LoraConfig>, RegExp]> = [
    [{ r: 0 }, /LoraConfig\.r = 0[\s\S]*hint: r must be a positive integer/],
    [{ r: 2.5 }, /LoraConfig\.r/],
    [{ loraDropout: 1 }, /loraDropout[\s\S]*\[0, 1\)/],
    [{ bias: 'some' as 'none' }, /bias[\s\S]*one of none, all, lora_only/],
    [{ initLoraWeights: 'pissa' as 'gaussian' }, /initLoraWeights/],
    [{ targetModules: [] }, /targetModules/],
    [{ targetModules: '(' }, /valid regular expression/],
    [{ rankPattern: { q_proj: 0 } }, /rankPattern\["q_proj"\]/],
    [{ targetModules: '.*q_proj', layersToTransform: [0] }, /layersToTransform/],
  ];
  for (const [opts, re] of bad) assert.throws(() => LoraConfig(opts), (e: unknown) => e instanceof ConfigError && re.test(e.message), JSON.stringify(opts));
});

test('loraConfigToHf writes every PEFT 0.19.1 key; loraConfigFromHf reads it back', () => {
  const c = LoraConfig({ r: 4, loraAlpha: 8.5, targetModules: ['v_proj', 'q_proj', 'q_proj'], loraDropout: 0.1, initLoraWeights: 'gaussian', taskType: null });
  const hf = loraConfigToHf(c, { name: 'LlamaForCausalLM', library: 'transformers.models.llama.modeling_llama' });
  assert.deepEqual(Object.keys(hf).sort(), [
    'alora_invocation_tokens', 'alpha_pattern', 'arrow_config', 'auto_mapping', 'base_model_name_or_path', 'bias', 'corda_config',
    'ensure_weight_tying', 'eva_config', 'exclude_modules', 'fan_in_fan_out', 'inference_mode', 'init_lora_weights', 'layer_replication',
    'layers_pattern', 'layers_to_transform', 'loftq_config', 'lora_alpha', 'lora_bias', 'lora_dropout', 'lora_ga_config', 'megatron_config',
    'megatron_core', 'modules_to_save', 'peft_type', 'peft_version', 'qalora_group_size', 'r', 'rank_pattern', 'revision', 'target_modules',
    'target_parameters', 'task_type', 'trainable_token_indices', 'use_bdlora', 'use_dora', 'use_qalora', 'use_rslora',
  ]);
  assert.deepEqual(hf['target_modules'], ['q_proj', 'v_proj']); // a set in PEFT: sorted here
  assert.deepEqual(hf['auto_mapping'], { base_model_class: 'LlamaForCausalLM', parent_library: 'transformers.models.llama.modeling_llama' });
  const text = pyJsonDumps(hf);
  assert.match(text, /"lora_alpha": 8\.5,/);
  assert.match(text, /"lora_dropout": 0\.1,/);
  const back = loraConfigFromHf(JSON.parse(text), 'adapter_config.json');
  assert.deepEqual(back, { ...c, targetModules: ['q_proj', 'v_proj'] });
});

test('loraConfigFromHf: wrong peft_type and unsupported variants are FormatErrors naming the file', () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ peft_type: 'IA3', target_modules: ['q_proj'] }, /a\/adapter_config\.json: peft_type "IA3" is not supported/],
    [{ peft_type: 'LORA', target_modules: ['q_proj'], use_dora: true }, /use_dora = true is not supported/],
    [{ peft_type: 'LORA', target_modules: ['q_proj'], init_lora_weights: 'pissa' }, /init_lora_weights "pissa"/],
    [{ peft_type: 'LORA' }, /target_modules is missing/],
    [{ peft_type: 'LORA', target_modules: ['q_proj'], r: -1 }, /a\/adapter_config\.json: LoraConfig\.r = -1/],
  ];
  for (const [json, re] of cases) {
    assert.throws(() => loraConfigFromHf(json, 'a/adapter_config.json'), (e: unknown) => e instanceof FormatError && re.test(e.message), JSON.stringify(json));
  }
});
