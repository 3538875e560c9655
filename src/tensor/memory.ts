// Memory accounting: current and peak bytes per category, for every tensor ftune
// allocates. Training commands report these next to RSS; `ftune estimate` predicts them.

export type MemoryCategory = 'weights' | 'grads' | 'optimizer' | 'activations' | 'workspace';
export const MEMORY_CATEGORIES: readonly MemoryCategory[] = ['weights', 'grads', 'optimizer', 'activations', 'workspace'];

export interface MemoryStats {
  current: Record<MemoryCategory, number>;
  peak: Record<MemoryCategory, number>;
  /** Sum over categories now, and its peak (not the sum of per-category peaks). */
  totalCurrent: number;
  totalPeak: number;
}

const zero = (): Record<MemoryCategory, number> => ({ weights: 0, grads: 0, optimizer: 0, activations: 0, workspace: 0 });

const current = zero();
const peak = zero();
let totalCurrent = 0;
let totalPeak = 0;

export function noteAlloc(category: MemoryCategory, bytes: number): void {
  current[category] += bytes;
  if (current[category] > peak[category]) peak[category] = current[category];
  totalCurrent += bytes;
  if (totalCurrent > totalPeak) totalPeak = totalCurrent;
}

export function noteFree(category: MemoryCategory, bytes: number): void {
  current[category] -= bytes;
  totalCurrent -= bytes;
}

/** A snapshot of the accounting (bytes). */
export function memoryStats(): MemoryStats {
  return { current: { ...current }, peak: { ...peak }, totalCurrent, totalPeak };
}

/** Starts a new peak window at the current usage. */
export function resetPeak(): void {
  for (const c of MEMORY_CATEGORIES) peak[c] = current[c];
  totalPeak = totalCurrent;
}
