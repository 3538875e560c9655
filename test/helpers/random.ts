// Seeded randomness for tests: the library's own Rng.
export { Rng } from '../../src/util/rng.js';
