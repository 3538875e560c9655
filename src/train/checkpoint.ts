// Trainer checkpoints: outputDir/checkpoint-N/ holds the model or adapter (as its
// savePretrained writes it), the optimizer state with the exact trainable values
// (optimizer.safetensors: flat values, m, v), scheduler.json, rng_state.json,
// trainer_state.json and training_args.json. A checkpoint is built under a hidden
// temporary name, fsynced and renamed into place, and rotation retires a checkpoint by
// renaming it away before deleting it, so a killed run never leaves a partial checkpoint-N.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, FormatError } from '../errors.js';
import { buildDirAtomic, removeDirAtomic } from '../io/atomic.js';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors.js';
import { writeJsonFile } from '../models/save.js';
import type { Tensor } from '../tensor/tensor.js';
import type { TrainingArguments } from './args.js';
import type { Optimizer } from './optim.js';
import { loadTrainerState, saveTrainerState, type TrainerState } from './state.js';

/** Running sums the Trainer needs to continue a run exactly. */
export interface RunTotals {
  lossSinceLog: number;
  stepsSinceLog: number;
  lossTotal: number;
  stepsTotal: number;
}

const CHECKPOINT = /^checkpoint-(\d+)$/;

function bytesOf(t: Tensor<'f32'>): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

export function saveCheckpoint(
  dir: string,
  parts: { saveModel: (dir: string) => void; optimizer: Optimizer; state: TrainerState; totals: RunTotals; args: TrainingArguments; schedule: object },
): void {
  const p = parts.optimizer.params;
  buildDirAtomic(dir, (tmp) => {
    parts.saveModel(tmp);
    writeSafetensors(join(tmp, 'optimizer.safetensors'), [
      { name: 'values', dtype: 'F32', shape: [p.count], data: p.segments.map((s) => bytesOf(s.values)) },
      { name: 'm', dtype: 'F32', shape: [p.count], data: p.segments.map((s) => bytesOf(s.m)) },
      { name: 'v', dtype: 'F32', shape: [p.count], data: p.segments.map((s) => bytesOf(s.v)) },
    ], { format: 'ftune', step: String(parts.optimizer.step), names: p.names.join(',') });
    writeJsonFile(join(tmp, 'scheduler.json'), parts.schedule);
    writeJsonFile(join(tmp, 'rng_state.json'), { seed: parts.args.seed, ...parts.totals });
    writeJsonFile(join(tmp, 'training_args.json'), parts.args);
    // Written last: listCheckpoints only counts directories that hold it.
    saveTrainerState(join(tmp, 'trainer_state.json'), parts.state);
  }, { replace: true });
}

/** Restores trainable values, optimizer moments and step; returns the state and totals. */
export function loadCheckpoint(dir: string, optimizer: Optimizer): { state: TrainerState; totals: RunTotals } {
  const path = join(dir, 'optimizer.safetensors');
  if (!existsSync(path)) throw new FormatError(`${dir}: no optimizer.safetensors`, 'resume from a checkpoint-N directory written by ftune train');
  const file = SafetensorsFile.open(path);
  try {
    const p = optimizer.params;
    if (file.metadata?.['names'] !== p.names.join(',')) {
      throw new FormatError(`${path}: the checkpoint's trainable parameters differ from this run's`, 'resume with the same model, method and LoRA settings as the run that wrote the checkpoint');
    }
    for (const name of ['values', 'm', 'v'] as const) {
      const info = file.tensors.get(name);
      if (info?.shape[0] !== p.count) throw new FormatError(`${path}: ${name} holds ${info?.shape[0] ?? 0} values, this run has ${p.count}`, 'resume with the same settings');
      for (const s of p.segments) file.readRangeInto(name, s.start * 4, bytesOf(s[name]));
    }
    optimizer.step = Number(file.metadata['step'] ?? '0');
  } finally {
    file.close();
  }
  const state = loadTrainerState(join(dir, 'trainer_state.json'));
  const rng = JSON.parse(readFileSync(join(dir, 'rng_state.json'), 'utf8')) as Partial<RunTotals>;
  const totals: RunTotals = { lossSinceLog: rng.lossSinceLog ?? 0, stepsSinceLog: rng.stepsSinceLog ?? 0, lossTotal: rng.lossTotal ?? 0, stepsTotal: rng.stepsTotal ?? 0 };
  return { state, totals };
}

/** checkpoint-N directories under outputDir, oldest first. */
export function listCheckpoints(outputDir: string): Array<{ step: number; dir: string }> {
  if (!existsSync(outputDir)) return [];
  return readdirSync(outputDir)
    .map((name) => ({ m: CHECKPOINT.exec(name), name }))
    .filter((e) => e.m !== null && existsSync(join(outputDir, e.name, 'trainer_state.json')))
    .map((e) => ({ step: Number(e.m?.[1]), dir: join(outputDir, e.name) }))
    .sort((a, b) => a.step - b.step);
}

/** "latest" -> the newest checkpoint under outputDir; a path is checked. */
export function resolveResume(value: string, outputDir: string): string {
  if (value === 'latest') {
    const last = listCheckpoints(outputDir).at(-1);
    if (last === undefined) throw new ConfigError(`resume from latest: no checkpoint-N under ${outputDir}`, 'train without resuming first, or pass a checkpoint directory');
    return last.dir;
  }
  if (!existsSync(join(value, 'trainer_state.json'))) throw new ConfigError(`resume: ${value} is not a checkpoint (no trainer_state.json)`, 'pass a checkpoint-N directory or "latest"');
  return value;
}

/** Deletes the oldest checkpoints beyond `limit`, never the best one. */
export function rotateCheckpoints(outputDir: string, limit: number | undefined, best: string | undefined): void {
  if (limit === undefined) return;
  const all = listCheckpoints(outputDir);
  let excess = all.length - limit;
  for (const c of all) {
    if (excess <= 0) break;
    if (c.dir === best) continue;
    removeDirAtomic(c.dir);
    excess--;
  }
}
