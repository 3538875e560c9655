// Seeded randomness (STYLE.md rule 12): mulberry32 for uniforms, Box-Muller for normals.
// Every random choice in ftune (sampling, init, shuffling) goes through an Rng.

export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Standard normal. */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** n normals times std. */
  normals(n: number, std = 1): Float32Array {
    return this.fillNormals(new Float32Array(n), std);
  }

  /** Fills `out` with normals times std (the values normals(out.length, std) returns). */
  fillNormals<A extends Float32Array>(out: A, std = 1): A {
    for (let i = 0; i < out.length; i++) out[i] = this.normal() * std;
    return out;
  }
}
