// Which modules a LoraConfig targets, with PEFT's rules (tuners_utils.py
// check_target_module_exists, _maybe_include_all_linear_layers, get_pattern_key):
// a regex string must match the whole module path; a list entry matches the path itself
// or its end after a "."; layersToTransform keeps paths whose "<layers>.<i>." index is
// listed; rank/alpha pattern keys match the path's end. Paths are relative to the base
// model (model.layers.0.self_attn.q_proj), and module-tree surgery lives here too.
import { ConfigError } from '../errors.js';
import { Module } from '../nn/module.js';
import type { LoraConfig } from './config.js';

/** PEFT's defaults per model_type (utils/constants.py TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING). */
export const DEFAULT_TARGET_MODULES: Readonly<Record<string, readonly string[]>> = {
  llama: ['q_proj', 'v_proj'],
  mistral: ['q_proj', 'v_proj'],
  qwen2: ['q_proj', 'v_proj'],
};

/** Path segments that belong to PEFT's wrappers, never to the base model's own tree. */
const WRAPPER_SEGMENTS = new Set(['base_layer', 'lora_A', 'lora_B', 'original_module', 'modules_to_save']);

/** Python re.fullmatch(pattern, key), with JavaScript regex syntax. */
export function fullMatch(pattern: string, key: string): boolean {
  return new RegExp(`^(?:${pattern})$`).test(key);
}

function listMatch(list: readonly string[], key: string): boolean {
  return list.includes(key) || list.some((t) => key.endsWith(`.${t}`));
}

/** The decoder-layer index in `key` (PEFT: `.*\.{pattern}\.(\d+)\.`; any segment when no pattern). */
export function layerIndexOf(key: string, layersPattern: string[] | string | null): number | undefined {
  const patterns = layersPattern === null || layersPattern.length === 0 ? ['[^.]*'] : [layersPattern].flat();
  for (const p of patterns) {
    const m = new RegExp(`^.*\\.${p}\\.(\\d+)\\.`).exec(key);
    if (m?.[1] !== undefined) return Number(m[1]);
  }
  return undefined;
}

/** PEFT check_target_module_exists for one module path; targetModules already resolved. */
export function isTargeted(cfg: LoraConfig, targets: string[] | string, key: string): boolean {
  const ex = cfg.excludeModules;
  if (ex !== null && (typeof ex === 'string' ? fullMatch(ex, key) : listMatch(ex, key))) return false;
  if (typeof targets === 'string') return fullMatch(targets, key);
  if (targets.includes(key)) return true;
  if (!targets.some((t) => key.endsWith(`.${t}`))) return false;
  const layers = cfg.layersToTransform;
  if (layers === null || (Array.isArray(layers) && layers.length === 0)) return true;
  const i = layerIndexOf(key, cfg.layersPattern);
  if (i === undefined) return false;
  return typeof layers === 'number' ? i === layers : layers.includes(i);
}

/** The first key of a rank/alpha pattern that matches `key` (exact, or `(.*\.)?key$`). */
export function patternValue(pattern: Readonly<Record<string, number>>, key: string): number | undefined {
  for (const [k, v] of Object.entries(pattern)) {
    if (k === key || new RegExp(`^(?:.*\\.)?(?:${k})$`).test(key)) return v;
  }
  return undefined;
}

/** [path, module] of the base model's own modules (wrapper internals left out). */
export function baseModules(root: Module): Array<[string, Module]> {
  return root.namedModules().filter(([p]) => p !== '' && !p.split('.').some((s) => WRAPPER_SEGMENTS.has(s)));
}

/**
 * targetModules as a list or regex: null becomes the family default, "all-linear" the
 * full paths of every linear module except the output head (as PEFT expands it).
 */
export function resolveTargets(cfg: LoraConfig, modelType: string, linearPaths: readonly string[], outputHead: string): string[] | string {
  const t = cfg.targetModules;
  if (t === null) {
    const d = DEFAULT_TARGET_MODULES[modelType];
    if (d === undefined) {
      throw new ConfigError(`LoraConfig.targetModules is not set and model_type ${JSON.stringify(modelType)} has no default`, 'set targetModules, e.g. ["q_proj", "v_proj"] or "all-linear"');
    }
    return [...d];
  }
  if (typeof t === 'string' && t.toLowerCase() === 'all-linear') return linearPaths.filter((p) => p !== outputHead);
  return t;
}

/** ConfigError listing the module names that exist, for a targetModules that matched nothing. */
export function noMatchError(field: string, value: unknown, modules: ReadonlyArray<[string, Module]>): ConfigError {
  const names = [...new Set(modules.map(([p]) => p.split('.').pop() ?? p).filter((s) => !/^\d+$/.test(s)))];
  const example = modules.find(([p]) => /\.0\./.test(p))?.[0] ?? modules[0]?.[0] ?? '';
  return new ConfigError(`LoraConfig.${field} ${JSON.stringify(value)} matched no module of the model`,
    `module names in this model: ${names.join(', ')} (full paths look like ${JSON.stringify(example)})`);
}

export { moduleAt, replaceModuleAt } from '../nn/tree.js';
