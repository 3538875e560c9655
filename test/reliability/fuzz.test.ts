// Bounded, seeded fuzzing of every input kind (fuzz-worker.ts): each outcome must be
// success or a typed error with a hint; no crash, no hang (a case that makes no progress
// for HANG_MS kills the worker and fails, naming the seed and mutation), no unbounded
// allocation (the worker's heap is capped and tensor allocations are checked per case).
// FTUNE_FUZZ_ITERS (default 210, 15 per kind) and FTUNE_FUZZ_SEED (default 1) size the run;
// `npm run test:fuzz-long` runs 10,000 iterations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { DATA_DIR, fixture } from '../helpers/data.js';
import type { FuzzMessage, FuzzRequest } from './fuzz-worker.js';

/** No single case (load + one use of a 1 MB model) comes near this; more means a hang. */
const HANG_MS = 20_000;
const ITERATIONS = Number(process.env['FTUNE_FUZZ_ITERS'] ?? 210);
const SEED = Number(process.env['FTUNE_FUZZ_SEED'] ?? 1);

function runFuzz(req: FuzzRequest): Promise<{ counts?: Record<string, { cases: number; ok: number; typed: number }>; failure?: string }> {
  return new Promise((resolve) => {
    const worker = new Worker(new URL('./fuzz-worker.js', import.meta.url), {
      workerData: req,
      resourceLimits: { maxOldGenerationSizeMb: 1024 },
    });
    let current = 'startup';
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        void worker.terminate();
        resolve({ failure: `hang: no progress for ${HANG_MS} ms during ${current}` });
      }, HANG_MS);
    };
    arm();
    worker.on('message', (m: FuzzMessage) => {
      if (m.type === 'start') {
        current = `seed ${req.seed}, iteration ${m.i}, ${m.kind}: ${m.what}`;
        arm();
      } else if (m.type === 'fail') {
        clearTimeout(timer);
        resolve({ failure: `${m.error}` });
      } else {
        clearTimeout(timer);
        resolve({ counts: m.counts });
      }
    });
    worker.on('error', (e) => {
      clearTimeout(timer);
      resolve({ failure: `worker died during ${current}: ${e.message}` });
    });
    worker.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ failure: `worker exited with ${code} during ${current}` });
    });
  });
}

test(`fuzz: ${ITERATIONS} seeded mutations of real files end in success or a typed error`, { timeout: 600_000 }, async (t) => {
  if (fixture(t, 'hf_models', 'stories260K-hf') === undefined || fixture(t, 'llama2c', 'stories260K.bin') === undefined) return;
  const r = await runFuzz({ dataDir: DATA_DIR, seed: SEED, iterations: ITERATIONS });
  assert.equal(r.failure, undefined, r.failure);
  const counts = r.counts ?? {};
  const total = Object.values(counts).reduce((s, c) => s + c.cases, 0);
  assert.equal(total, ITERATIONS);
  for (const [kind, c] of Object.entries(counts)) t.diagnostic(`${kind}: ${c.cases} cases, ${c.ok} loaded, ${c.typed} typed errors`);
});
