// The typed description of the whole native addon (native/src/*_bind.cc) and its loader.
// Loading applies FTUNE_ISA (scalar|avx2|avx512) and FTUNE_THREADS.
import { constants } from 'node:buffer';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, NativeError } from '../../errors.js';
import type { GemmAddon } from './addon-gemm.js';
import type { OpsAddon } from './addon-ops.js';
import type { RandAddon } from './addon-rand.js';
import type { GradAddon } from './addon-grad.js';
import type { QuantAddon } from './addon-quant.js';

export type Isa = 'scalar' | 'avx2' | 'avx512';
export const ISAS: readonly Isa[] = ['scalar', 'avx2', 'avx512'];

export interface CoreAddon {
  /** 64-byte aligned native memory, zero-filled unless zero is false; null when the allocation fails. */
  alloc(bytes: number, zero?: boolean): ArrayBuffer | null;
  /** Frees the blocks the caching pool keeps for reuse; returns the bytes freed. */
  trimPool(): number;
  /** The largest buffer alloc may create (larger requests throw a RangeError). */
  setMaxAlloc(bytes: number): void;
  /** Frees the memory now and detaches the buffer. */
  release(buffer: ArrayBuffer): void;
  cpuFeatures(): { avx2: boolean; avx512: boolean; avx512bf16: boolean };
  activeIsa(): number;
  setIsa(isa: number): number;
  threads(): number;
  setThreads(n: number): void;
  nativeBytes(): { live: number; peak: number; cached: number };
}

export type NativeAddon = CoreAddon & GemmAddon & OpsAddon & RandAddon & GradAddon & QuantAddon;

/** Status codes of native/src/ftune.h. */
const STATUS: Record<number, string> = {
  1: 'a buffer is smaller than the dims require',
  2: 'a dimension or parameter is out of range',
  3: 'the requested ISA is not supported by this CPU',
  4: 'out of memory',
};

/** Throws a NativeError when a kernel returned a non-zero status. */
export function check(status: number, kernel: string): void {
  if (status !== 0) throw new NativeError(kernel, status, STATUS[status] ?? 'unknown status');
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'binding.gyp'))) {
    const up = dirname(dir);
    if (up === dir) throw new ConfigError('cannot find the ftune package root (binding.gyp)', 'reinstall ftune with npm install');
    dir = up;
  }
  return dir;
}

function load(): NativeAddon {
  const path = join(packageRoot(), 'build', 'Release', 'ftune_native.node');
  if (!existsSync(path)) {
    throw new ConfigError(`native addon not built: ${path} is missing`, 'run npm install (it builds the addon with node-gyp; needs g++ and make)');
  }
  // OpenMP threads that spin at barriers stall badly when the cores are shared (another
  // process, a second job): libgomp's default spins ~300k iterations. A short spin keeps
  // back-to-back kernels fast on an idle machine and yields quickly on a busy one.
  // libgomp reads this when it loads with the addon; the user's own setting wins.
  if (process.env['OMP_WAIT_POLICY'] === undefined && process.env['GOMP_SPINCOUNT'] === undefined) process.env['GOMP_SPINCOUNT'] = '10000';
  const addon = createRequire(import.meta.url)(path) as NativeAddon;
  addon.setMaxAlloc(constants.MAX_LENGTH);
  applyEnv(addon);
  return addon;
}

function applyEnv(addon: NativeAddon): void {
  const isa = process.env['FTUNE_ISA'];
  if (isa !== undefined && isa !== '') setIsaOn(addon, isa);
  const threads = process.env['FTUNE_THREADS'];
  if (threads !== undefined && threads !== '') {
    const n = Number(threads);
    if (!Number.isInteger(n) || n < 1) {
      throw new ConfigError(`FTUNE_THREADS=${threads} is not a positive integer`, 'set FTUNE_THREADS to a thread count such as 2, or unset it to use all cores');
    }
    addon.setThreads(n);
  }
}

function setIsaOn(addon: NativeAddon, isa: string): void {
  const index = ISAS.indexOf(isa as Isa);
  if (index < 0) throw new ConfigError(`FTUNE_ISA=${isa} is not one of ${ISAS.join(', ')}`, 'set FTUNE_ISA to scalar, avx2 or avx512, or unset it to pick the best one');
  if (addon.setIsa(index) !== 0) {
    const f = addon.cpuFeatures();
    const have = ISAS.filter((_, i) => i === 0 || (i === 1 && f.avx2) || (i === 2 && f.avx512));
    throw new ConfigError(`FTUNE_ISA=${isa}: this CPU does not support ${isa}`, `use one of: ${have.join(', ')}`);
  }
}

let cached: NativeAddon | undefined;

/** The loaded addon (loaded once, on first use). */
export function native(): NativeAddon {
  cached ??= load();
  return cached;
}

/** The ISA kernels dispatch to now. */
export function activeIsa(): Isa {
  return ISAS[native().activeIsa()] ?? 'scalar';
}

/** Switches the ISA at run time (tests use this to check every variant). */
export function setIsa(isa: Isa): void {
  setIsaOn(native(), isa);
}

/** The ISAs this CPU can run, best last. */
export function supportedIsas(): Isa[] {
  const f = native().cpuFeatures();
  return ISAS.filter((isa) => isa === 'scalar' || (isa === 'avx2' && f.avx2) || (isa === 'avx512' && f.avx512));
}
