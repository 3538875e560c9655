// Activation scopes: every activation tensor allocated while a scope is open is released
// when it closes, except the ones the scope's function returns or keeps. This is how
// per-step memory is reset without the user ever calling dispose().

interface Releasable {
  release(): void;
}

const stack: Set<Releasable>[] = [];

/** Registers a new activation with the innermost open scope (if any). */
export function track(t: Releasable): void {
  stack[stack.length - 1]?.add(t);
}

/** Removes `t` from every open scope (it becomes persistent). */
export function untrack(t: Releasable): void {
  for (const s of stack) s.delete(t);
}

/** Moves `t` out of the innermost scope to the enclosing one (or out of all scopes). */
export function keep<T extends Releasable>(t: T): T {
  const top = stack[stack.length - 1];
  if (top?.delete(t)) stack[stack.length - 2]?.add(t);
  return t;
}

/**
 * Runs fn; activations it allocates are released afterwards unless they are in the
 * value it returns (a tensor or an array/object of tensors, one level deep).
 */
export function scope<R>(fn: () => R): R {
  const mine = new Set<Releasable>();
  stack.push(mine);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const t of mine) t.release();
    throw e;
  }
  stack.pop();
  const kept = new Set<unknown>();
  if (result !== null && typeof result === 'object') {
    kept.add(result);
    for (const v of Object.values(result as object)) kept.add(v);
  }
  for (const t of mine) {
    if (kept.has(t)) stack[stack.length - 1]?.add(t);
    else t.release();
  }
  return result;
}
