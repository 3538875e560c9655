// Choosing the next token from a probability row: top-k, then top-p (nucleus), then a
// draw from the renormalised distribution with a seeded Rng. Same order and keep rules
// as Transformers' TopKLogitsWarper / TopPLogitsWarper (at least one token survives).
import type { Rng } from '../util/rng.js';

/** Ids sorted by probability, highest first (ties: lower id first). */
function sortedIds(probs: Float32Array): Int32Array {
  const ids = Int32Array.from({ length: probs.length }, (_, i) => i);
  return ids.sort((a, b) => (probs[b] ?? 0) - (probs[a] ?? 0) || a - b);
}

/**
 * Samples an id from `probs` (V, sums to 1) restricted to the topK most likely ids
 * (0 = no limit) and to the smallest prefix whose mass reaches topP (1 = no limit).
 */
export function sampleFrom(probs: Float32Array, topK: number, topP: number, rng: Rng): number {
  const ids = sortedIds(probs);
  let keep = topK > 0 ? Math.min(topK, ids.length) : ids.length;
  if (topP < 1) {
    let mass = 0;
    for (let i = 0; i < keep; i++) {
      mass += probs[ids[i] ?? 0] ?? 0;
      if (mass >= topP) {
        keep = i + 1;
        break;
      }
    }
  }
  let total = 0;
  for (let i = 0; i < keep; i++) total += probs[ids[i] ?? 0] ?? 0;
  let r = rng.next() * total;
  for (let i = 0; i < keep; i++) {
    const id = ids[i] ?? 0;
    r -= probs[id] ?? 0;
    if (r < 0) return id;
  }
  return ids[keep - 1] ?? 0;
}
