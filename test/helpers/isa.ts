// ISA loops for native-backend tests: run a body under every ISA this CPU supports (each
// in its own scope(), so its tensors are freed before the next), and restore the ISA
// that was active before, even when an assertion throws; and run a body under a chosen
// OpenMP thread count.
import { scope } from '../../src/tensor/scope.js';
import { activeIsa, native, setIsa, supportedIsas, type Isa } from '../../src/backend/native/addon.js';

/** Runs fn once per supported ISA inside scope(), restoring the ISA that was active before. */
export function eachIsa(fn: (isa: Isa) => void): void {
  const before = activeIsa();
  try {
    for (const isa of supportedIsas()) {
      setIsa(isa);
      scope(() => fn(isa));
    }
  } finally {
    setIsa(before);
  }
}

/** Runs fn with the reference ops ('ref'), then with the native ops under every supported ISA ('native <isa>'). */
export function eachBackend<Ops>(refOps: Ops, nativeOps: Ops, fn: (ops: Ops, name: string) => void): void {
  scope(() => fn(refOps, 'ref'));
  eachIsa((isa) => fn(nativeOps, `native ${isa}`));
}

/** fn's result with `threads` OpenMP threads, restoring the count that was set before. */
export function withThreads<T>(threads: number, fn: () => T): T {
  const before = native().threads();
  native().setThreads(threads);
  try {
    return fn();
  } finally {
    native().setThreads(before);
  }
}
