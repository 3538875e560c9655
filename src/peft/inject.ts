// Injecting one adapter into a model: resolve targetModules (default, "all-linear",
// list or regex), wrap every matched Linear in a LoraLinear (or add the adapter to the
// LoraLinear already there), and wrap modulesToSave in trainable copies. The config
// returned has targetModules expanded as PEFT stores it before saving.
import type { Backend } from '../backend/backend.js';
import { ConfigError } from '../errors.js';
import { Linear } from '../nn/layers.js';
import { Linear4bit } from '../nn/linear4bit.js';
import type { Module } from '../nn/module.js';
import { Rng } from '../util/rng.js';
import type { LoraConfig } from './config.js';
import { LoraLinear, type LoraAdapterSpec } from './lora-layer.js';
import { baseModules, isTargeted, noMatchError, patternValue, replaceModuleAt, resolveTargets } from './matching.js';
import { ModulesToSaveWrapper, isSavable, type SavableModule } from './modules-to-save.js';

/** The output head keeps its dense path (the loss reads its weight directly). */
export const OUTPUT_HEAD = 'lm_head';

/** Rank, alpha and scaling for the module at `path` (rank/alpha patterns first). */
export function adapterSpec(cfg: LoraConfig, path: string): LoraAdapterSpec {
  const r = patternValue(cfg.rankPattern, path) ?? cfg.r;
  const alpha = patternValue(cfg.alphaPattern, path) ?? cfg.loraAlpha;
  return { r, alpha, scaling: cfg.useRslora ? alpha / Math.sqrt(r) : alpha / r, dropout: cfg.loraDropout, init: cfg.initLoraWeights };
}

/** The Linear (or LoRA) modules adapter config `cfg` targets, and targetModules as saved; throws before touching the model. */
function planLora(root: Module, cfg: LoraConfig, modelType: string): { targets: string[] | string; matched: Array<[string, Module]> } {
  const modules = baseModules(root);
  const linearPaths = modules.filter(([, m]) => isLinear(m) || m instanceof LoraLinear).map(([p]) => p);
  const targets = resolveTargets(cfg, modelType, linearPaths, OUTPUT_HEAD);
  const matched = modules.filter(([p]) => isTargeted(cfg, targets, p));
  if (matched.length === 0) throw noMatchError('targetModules', cfg.targetModules, modules);
  for (const [path, m] of matched) {
    if (path === OUTPUT_HEAD) {
      throw new ConfigError(`LoraConfig.targetModules matches the output head ${OUTPUT_HEAD}`, 'LoRA on lm_head is not supported; put "lm_head" in modulesToSave to train it in full');
    }
    if (!isLinear(m) && !(m instanceof LoraLinear)) {
      throw new ConfigError(`LoraConfig.targetModules matches ${path} (${m.constructor.name}), which is not a Linear layer`,
        'target Linear modules only, e.g. q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj');
    }
  }
  return { targets, matched };
}

function applyLora(root: Module, name: string, cfg: LoraConfig, matched: ReadonlyArray<[string, Module]>, rng: Rng): void {
  for (const [path, m] of matched) {
    let layer: LoraLinear;
    if (m instanceof LoraLinear) layer = m;
    else {
      layer = new LoraLinear(m as Linear | Linear4bit);
      replaceModuleAt(root, path, layer);
    }
    layer.addAdapter(name, adapterSpec(cfg, path), rng);
  }
}

/** The modules modulesToSave names (path equal to an entry or ending in "." + entry). */
function planSaved(root: Module, names: readonly string[]): Array<[string, Module]> {
  if (names.length === 0) return [];
  const modules = baseModules(root);
  const matched = modules.filter(([p]) => names.some((n) => p === n || p.endsWith(`.${n}`)));
  if (matched.length === 0) throw noMatchError('modulesToSave', names, modules);
  for (const [path, m] of matched) {
    if (!(m instanceof ModulesToSaveWrapper) && !isSavable(m)) {
      throw new ConfigError(`LoraConfig.modulesToSave matches ${path} (${m.constructor.name})`, 'modulesToSave supports Linear, Embedding and RMSNorm modules (e.g. lm_head, embed_tokens, norm)');
    }
  }
  return matched;
}

function applySaved(root: Module, name: string, matched: ReadonlyArray<[string, Module]>, backend: Backend): void {
  for (const [path, m] of matched) {
    let w: ModulesToSaveWrapper;
    if (m instanceof ModulesToSaveWrapper) w = m;
    else {
      w = new ModulesToSaveWrapper(m as SavableModule);
      replaceModuleAt(root, path, w);
    }
    w.addAdapter(name, backend);
  }
}

/**
 * Adds adapter `name` to the model tree under `root` (all checks first, so a bad config
 * leaves the model untouched) and returns its config with
 * targetModules as PEFT saves it (defaults filled, "all-linear" expanded to full paths).
 */
export function injectAdapter(root: Module, name: string, cfg: LoraConfig, opts: { modelType: string; backend: Backend; seed: number }): LoraConfig {
  const { targets, matched } = planLora(root, cfg, opts.modelType);
  const saved = planSaved(root, cfg.modulesToSave ?? []);
  applyLora(root, name, cfg, matched, new Rng(opts.seed));
  applySaved(root, name, saved, opts.backend);
  return { ...cfg, targetModules: targets };
}

/** LoRA wraps dense and 4-bit linear layers alike (QLoRA is LoRA over a 4-bit base). */
function isLinear(m: Module): m is Linear | Linear4bit {
  return m instanceof Linear || m instanceof Linear4bit;
}
