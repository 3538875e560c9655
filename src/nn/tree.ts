// Module-tree surgery: find the module at a dotted path and put another in its place
// (a field, an array slot or a record entry). LoRA injection, merging and dequantizing
// 4-bit layers all swap modules this way.
import { ConfigError } from '../errors.js';
import { Module } from './module.js';

type Container = Module | Module[] | Record<string, Module>;

function child(c: Container, seg: string): unknown {
  return Reflect.get(c, seg);
}

function isContainer(v: unknown): v is Container {
  return v instanceof Module || Array.isArray(v) || (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype);
}

/** The module at `path` under root, or undefined. */
export function moduleAt(root: Module, path: string): Module | undefined {
  let cur: unknown = root;
  for (const seg of path.split('.')) {
    if (!isContainer(cur)) return undefined;
    cur = child(cur, seg);
  }
  return cur instanceof Module ? cur : undefined;
}

/** Puts `m` where the module at `path` was (a field, an array slot or a record entry). */
export function replaceModuleAt(root: Module, path: string, m: Module): void {
  const segs = path.split('.');
  const last = segs.pop() ?? '';
  let cur: unknown = root;
  for (const seg of segs) {
    if (!isContainer(cur)) break;
    cur = child(cur, seg);
  }
  if (!isContainer(cur) || !(child(cur, last) instanceof Module)) {
    throw new ConfigError(`no module at ${JSON.stringify(path)} to replace`, 'this is a bug in ftune: the module tree changed under the adapter');
  }
  Reflect.set(cur, last, m);
}
