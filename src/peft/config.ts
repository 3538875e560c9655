// LoraConfig: PEFT's LoraConfig in camelCase (an interface, DEFAULTS, a pure resolve()),
// and the mapping to and from adapter_config.json. The JSON side follows PEFT 0.19.1
// (peft/tuners/lora/config.py, peft/config.py): every key it writes, with its defaults,
// so a file written here is the file PEFT writes for the same config.
import { ConfigError, FormatError } from '../errors.js';
import { PyFloat, type PyValue } from '../io/py-json.js';

/** The PEFT release whose adapter_config.json keys and defaults we write. */
export const PEFT_VERSION = '0.19.1';

export type LoraBias = 'none' | 'all' | 'lora_only';
export type LoraInit = boolean | 'gaussian';

export interface LoraConfig {
  /** Rank of the update B A (A is (r, in), B is (out, r)). */
  r: number;
  /** Scaling numerator: scaling = loraAlpha / r (loraAlpha / sqrt(r) with useRslora). */
  loraAlpha: number;
  /**
   * Which Linear modules get LoRA: a list (a module path equals an entry or ends with
   * "." + entry), a regex string (full match against the path), "all-linear" (every
   * Linear but the output head), or null (the model family's default: q_proj, v_proj).
   */
  targetModules: string[] | string | null;
  /** Modules never targeted, matched like targetModules (list or regex). */
  excludeModules: string[] | string | null;
  /** Dropout on the LoRA branch's input, in [0, 1). */
  loraDropout: number;
  /** Which biases train: none, every bias of the model, or those of the LoRA-wrapped layers. */
  bias: LoraBias;
  /** Modules trained in full and saved whole (e.g. lm_head, embed_tokens), matched by suffix. */
  modulesToSave: string[] | null;
  /** Rank-stabilized scaling alpha / sqrt(r) (Kalajdzievski 2023). */
  useRslora: boolean;
  /** true: A kaiming-uniform, B zero; "gaussian": A ~ N(0, std 1/r), B zero; false: B random too. */
  initLoraWeights: LoraInit;
  /** Only these decoder layer indices (list matching only). */
  layersToTransform: number[] | number | null;
  /** Name of the layer list in module paths (default: any "<name>.<index>." segment). */
  layersPattern: string[] | string | null;
  /** Per-module rank: key matched against the path's end, `(.*\.)?key$`. */
  rankPattern: Record<string, number>;
  /** Per-module alpha, matched like rankPattern. */
  alphaPattern: Record<string, number>;
  /** PEFT task type; CAUSAL_LM for decoder LMs. */
  taskType: 'CAUSAL_LM' | null;
  /** Where the base model came from (filled on save from the model). */
  baseModelNameOrPath: string | null;
  revision: string | null;
  /** true once loaded for inference only (PEFT writes true on save). */
  inferenceMode: boolean;
}

export const LORA_DEFAULTS: Readonly<LoraConfig> = {
  r: 8,
  loraAlpha: 8,
  targetModules: null,
  excludeModules: null,
  loraDropout: 0,
  bias: 'none',
  modulesToSave: null,
  useRslora: false,
  initLoraWeights: true,
  layersToTransform: null,
  layersPattern: null,
  rankPattern: {},
  alphaPattern: {},
  taskType: 'CAUSAL_LM',
  baseModelNameOrPath: null,
  revision: null,
  inferenceMode: false,
};

const BIASES: readonly LoraBias[] = ['none', 'all', 'lora_only'];

function bad(field: string, value: unknown, allowed: string): never {
  throw new ConfigError(`LoraConfig.${field} = ${JSON.stringify(value)} is invalid`, `${field} must be ${allowed}`);
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

function checkPattern(field: string, p: Record<string, number>, integer: boolean): void {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) bad(field, p, 'an object mapping module names to numbers');
  for (const [k, v] of Object.entries(p)) {
    if (typeof v !== 'number' || !(v > 0) || (integer && !Number.isInteger(v))) bad(`${field}[${JSON.stringify(k)}]`, v, integer ? 'a positive integer' : 'a positive number');
  }
}

/** Defaults filled in and every field checked (ConfigError naming the field). Pure. */
export function resolveLoraConfig(opts: Partial<LoraConfig> = {}): LoraConfig {
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as Partial<LoraConfig>;
  const c: LoraConfig = { ...LORA_DEFAULTS, ...given };
  if (!Number.isInteger(c.r) || c.r <= 0) bad('r', c.r, 'a positive integer');
  if (typeof c.loraAlpha !== 'number' || !(c.loraAlpha > 0)) bad('loraAlpha', c.loraAlpha, 'a positive number');
  if (typeof c.loraDropout !== 'number' || !(c.loraDropout >= 0 && c.loraDropout < 1)) bad('loraDropout', c.loraDropout, 'a number in [0, 1)');
  if (!BIASES.includes(c.bias)) bad('bias', c.bias, `one of ${BIASES.join(', ')}`);
  for (const f of ['targetModules', 'excludeModules'] as const) {
    const v = c[f];
    if (v !== null && typeof v !== 'string' && !isStringList(v)) bad(f, v, 'a list of module names, a regex string, or null');
    if (typeof v === 'string') {
      try {
        new RegExp(v);
      } catch {
        bad(f, v, 'a valid regular expression');
      }
    }
  }
  if (Array.isArray(c.targetModules) && c.targetModules.length === 0) bad('targetModules', c.targetModules, 'a non-empty list, a regex string, "all-linear", or null');
  if (c.modulesToSave !== null && !isStringList(c.modulesToSave)) bad('modulesToSave', c.modulesToSave, 'a list of module names or null');
  if (typeof c.useRslora !== 'boolean') bad('useRslora', c.useRslora, 'true or false');
  if (c.initLoraWeights !== true && c.initLoraWeights !== false && c.initLoraWeights !== 'gaussian') bad('initLoraWeights', c.initLoraWeights, 'true, false or "gaussian"');
  const l = c.layersToTransform;
  if (l !== null && !(Number.isInteger(l) && (l as number) >= 0) && !(Array.isArray(l) && l.every((i) => Number.isInteger(i) && i >= 0))) {
    bad('layersToTransform', l, 'a layer index, a list of layer indices, or null');
  }
  if (c.layersPattern !== null && typeof c.layersPattern !== 'string' && !isStringList(c.layersPattern)) bad('layersPattern', c.layersPattern, 'a string, a list of strings, or null');
  if (typeof c.targetModules === 'string' && (l !== null || c.layersPattern !== null)) {
    throw new ConfigError('LoraConfig: layersToTransform/layersPattern cannot be used when targetModules is a string (regex or "all-linear")',
      'list the module names in targetModules, or encode the layers in the regex');
  }
  checkPattern('rankPattern', c.rankPattern, true);
  checkPattern('alphaPattern', c.alphaPattern, false);
  c.rankPattern = { ...c.rankPattern };
  c.alphaPattern = { ...c.alphaPattern };
  if (c.taskType !== null && c.taskType !== 'CAUSAL_LM') bad('taskType', c.taskType, '"CAUSAL_LM" or null');
  return c;
}

/** PEFT's spelling: `LoraConfig({ r: 16, loraAlpha: 32, targetModules: 'all-linear' })`. */
export function LoraConfig(opts: Partial<LoraConfig> = {}): LoraConfig {
  return resolveLoraConfig(opts);
}

/** An int in Python unless fractional (PEFT users pass lora_alpha as an int). */
function pyNumber(x: number): number | PyFloat {
  return Number.isInteger(x) ? x : new PyFloat(x);
}

/**
 * asdict(LoraConfig) as PEFT 0.19.1 serializes it (runtime_config dropped, sets as lists).
 * target_modules / exclude_modules lists are sorted: PEFT holds them in a set, whose
 * order Python does not fix, so sorted is the deterministic choice.
 * `baseModelClass` fills auto_mapping when task_type is null, as PEFT does.
 */
export function loraConfigToHf(c: LoraConfig, baseModelClass?: { name: string; library: string }): Record<string, PyValue> {
  const set = (v: string[] | string | null): PyValue => (Array.isArray(v) ? [...new Set(v)].sort() : v);
  const pattern = (p: Record<string, number>): PyValue => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, pyNumber(v)]));
  const autoMapping = c.taskType === null && baseModelClass !== undefined ? { base_model_class: baseModelClass.name, parent_library: baseModelClass.library } : null;
  return {
    alora_invocation_tokens: null,
    alpha_pattern: pattern(c.alphaPattern),
    arrow_config: null,
    auto_mapping: autoMapping,
    base_model_name_or_path: c.baseModelNameOrPath,
    bias: c.bias,
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: set(c.excludeModules),
    fan_in_fan_out: false,
    inference_mode: c.inferenceMode,
    init_lora_weights: c.initLoraWeights,
    layer_replication: null,
    layers_pattern: c.layersPattern,
    layers_to_transform: c.layersToTransform,
    loftq_config: {},
    lora_alpha: pyNumber(c.loraAlpha),
    lora_bias: false,
    lora_dropout: new PyFloat(c.loraDropout),
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: c.modulesToSave,
    peft_type: 'LORA',
    peft_version: PEFT_VERSION,
    qalora_group_size: 16,
    r: c.r,
    rank_pattern: pattern(c.rankPattern),
    revision: c.revision,
    target_modules: set(c.targetModules),
    target_parameters: null,
    task_type: c.taskType,
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: c.useRslora,
  };
}

/**
 * Keys whose non-default values change the adapter's math in ways ftune does not
 * implement; loading such an adapter would silently give wrong outputs.
 */
const UNSUPPORTED: ReadonlyArray<[string, (v: unknown) => boolean]> = [
  ['use_dora', (v) => v === true],
  ['lora_bias', (v) => v === true],
  ['fan_in_fan_out', (v) => v === true],
  ['use_qalora', (v) => v === true],
  ['layer_replication', (v) => v !== null && v !== undefined],
  ['trainable_token_indices', (v) => v !== null && v !== undefined],
  ['target_parameters', (v) => v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0)],
  ['alora_invocation_tokens', (v) => v !== null && v !== undefined],
  ['use_bdlora', (v) => v !== null && v !== undefined && v !== false],
  ['arrow_config', (v) => v !== null && v !== undefined],
];

/** Parses adapter_config.json's object (FormatError naming `file` and the key). */
export function loraConfigFromHf(json: unknown, file: string): LoraConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new FormatError(`${file}: not a JSON object`, 'adapter_config.json must hold a JSON object');
  const j = json as Record<string, unknown>;
  if (j['peft_type'] !== 'LORA') {
    throw new FormatError(`${file}: peft_type ${JSON.stringify(j['peft_type'])} is not supported`, 'ftune loads LoRA adapters only (peft_type "LORA")');
  }
  for (const [key, isSet] of UNSUPPORTED) {
    if (isSet(j[key])) throw new FormatError(`${file}: ${key} = ${JSON.stringify(j[key])} is not supported`, `ftune implements plain LoRA; re-train or convert the adapter without ${key}`);
  }
  const init = j['init_lora_weights'] ?? true;
  if (init !== true && init !== false && init !== 'gaussian') {
    throw new FormatError(`${file}: init_lora_weights ${JSON.stringify(init)} is not supported`, 'adapters initialised with PiSSA/OLoRA/LoftQ change the base weights; convert them to plain LoRA first');
  }
  const opt = <T>(key: string, fallback: T): T | unknown => (j[key] === undefined ? fallback : j[key]);
  const task = opt('task_type', null);
  const fields: Partial<LoraConfig> = {
    r: opt('r', LORA_DEFAULTS.r) as number,
    loraAlpha: opt('lora_alpha', LORA_DEFAULTS.loraAlpha) as number,
    targetModules: opt('target_modules', null) as LoraConfig['targetModules'],
    excludeModules: opt('exclude_modules', null) as LoraConfig['excludeModules'],
    loraDropout: opt('lora_dropout', 0) as number,
    bias: opt('bias', 'none') as LoraBias,
    modulesToSave: opt('modules_to_save', null) as LoraConfig['modulesToSave'],
    useRslora: opt('use_rslora', false) as boolean,
    initLoraWeights: init,
    layersToTransform: opt('layers_to_transform', null) as LoraConfig['layersToTransform'],
    layersPattern: opt('layers_pattern', null) as LoraConfig['layersPattern'],
    rankPattern: opt('rank_pattern', {}) as Record<string, number>,
    alphaPattern: opt('alpha_pattern', {}) as Record<string, number>,
    taskType: task === 'CAUSAL_LM' ? 'CAUSAL_LM' : null,
    baseModelNameOrPath: typeof j['base_model_name_or_path'] === 'string' ? j['base_model_name_or_path'] : null,
    revision: typeof j['revision'] === 'string' ? j['revision'] : null,
    inferenceMode: j['inference_mode'] === true,
  };
  if (fields.targetModules === null) throw new FormatError(`${file}: target_modules is missing`, 'a LoRA adapter_config.json must list target_modules');
  try {
    return resolveLoraConfig(fields);
  } catch (e) {
    if (e instanceof ConfigError) throw new FormatError(`${file}: ${e.message.split('\nhint:')[0] ?? ''}`, e.hint);
    throw e;
  }
}
