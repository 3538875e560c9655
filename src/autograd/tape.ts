// Tape-based reverse-mode autodiff. Ops (ops.ts) record one node per call whose inputs
// carry gradient; backward() walks the nodes in reverse, accumulating gradients for
// intermediates in a map and handing each leaf's contributions to a sink as soon as
// they are produced (so weight gradients go straight into their flat buffer).
import type { Backend, FTensor } from '../backend/backend.js';
import type { Tensor } from '../tensor/tensor.js';

/**
 * Receives every gradient contribution for a watched leaf (sum them). The tape may free
 * `grad` as soon as the sink returns: copy it to keep it.
 */
export type LeafSink = (leaf: Tensor, grad: FTensor) => void;

/**
 * The gradient input j has already collected, when the rule may add its own contribution
 * to it in place: an f32 tensor nothing else holds (not shared with another entry, not a
 * forward tensor). A rule that does so (a GEMM with accumulate) returns that same tensor
 * for input j, and the tape keeps it as the sum. Undefined otherwise.
 */
export type AccumulateInto = (j: number) => FTensor | undefined;

/**
 * Computes the gradients of a node's inputs (undefined = none) from its output's. `sink`
 * is the leaf sink of the running backward pass (checkpointed blocks pass their
 * parameters' gradients straight to it); `into` offers gradients to accumulate into.
 */
export type BackwardFn = (gOut: FTensor, sink: LeafSink, into: AccumulateInto) => ReadonlyArray<FTensor | undefined>;

interface Node {
  inputs: ReadonlyArray<Tensor | undefined>;
  output: Tensor;
  backward: BackwardFn;
}

export class Tape {
  readonly #nodes: Node[] = [];
  readonly #tracked = new Set<Tensor>();
  readonly #leaves = new Set<Tensor>();
  /**
   * Where a leaf's gradient may be accumulated in place (the flat gradient buffer of a
   * trainable parameter), or undefined. A backward rule that finds a target adds its
   * contribution there (a GEMM with accumulate, a scatter-add) and returns no gradient
   * for that input, instead of allocating one for the sink to add.
   */
  gradTarget: ((leaf: Tensor) => Tensor<'f32'> | undefined) | undefined;

  readonly #remat = new Map<Tensor, () => Tensor>();

  /**
   * Frees `t` (an output that owns its storage) now and recomputes it when a backward rule
   * that takes it as an input is about to run: for cheap activations (RMSNorm, SiLU*up
   * outputs) whose recomputation costs less than keeping them. `recompute()` must return
   * the same values in a fresh tensor; rules must read `t` itself, not a view made in
   * forward (a view keeps the freed storage).
   */
  rematerialize(t: Tensor, recompute: () => Tensor): void {
    if (t.root !== t || t.released) return;
    this.#remat.set(t, recompute);
    t.release();
  }

  /** The in-place gradient target of `t` if it is a watched leaf that has one. */
  targetOf(t: Tensor | undefined): Tensor<'f32'> | undefined {
    return t !== undefined && this.#leaves.has(t) ? this.gradTarget?.(t) : undefined;
  }

  /** Marks a leaf (a trainable parameter, or a checkpoint's input) as needing gradient. */
  watch(t: Tensor): void {
    this.#tracked.add(t);
    this.#leaves.add(t);
  }

  /** The leaves this tape watches. */
  get leaves(): ReadonlySet<Tensor> {
    return this.#leaves;
  }

  tracks(t: Tensor | undefined): boolean {
    return t !== undefined && this.#tracked.has(t);
  }

  /**
   * Records `output = f(inputs)` if any input carries gradient (or `always`, for
   * checkpointed blocks whose parameters are inside). Returns whether it recorded.
   */
  record(inputs: ReadonlyArray<Tensor | undefined>, output: Tensor, backward: BackwardFn, always = false): boolean {
    if (!always && !inputs.some((t) => this.tracks(t))) return false;
    this.#nodes.push({ inputs, output, backward });
    this.#tracked.add(output);
    return true;
  }

  /**
   * Backpropagates `seed` (shaped like `output`) through every recorded node. Leaf
   * gradients go to `sink` (possibly several contributions per leaf); intermediate
   * gradients are summed without ever writing into a tensor another entry may share.
   *
   * Memory: a gradient is freed as soon as nothing holds it (reference counts per
   * storage, since rules may return views or the same tensor twice), and a node's
   * forward output is freed once the node is processed: in reverse order every consumer
   * of an output has already run its backward by then.
   */
  backward(backend: Backend, output: Tensor, seed: FTensor, sink: LeafSink): void {
    const grads = new Map<Tensor, FTensor>();
    const refs = new Map<Tensor, number>();
    const hold = (t: Tensor): void => void refs.set(t.root, (refs.get(t.root) ?? 0) + 1);
    const drop = (t: Tensor): void => {
      const n = (refs.get(t.root) ?? 0) - 1;
      if (n > 0) refs.set(t.root, n);
      else refs.delete(t.root);
    };
    // The seed stays the caller's: a checkpointed block's seed is its outer tape's gradient,
    // which that tape may share with another entry (add hands g to both inputs).
    const freeIfUnheld = (t: Tensor): void => {
      if (!refs.has(t.root) && !this.#leaves.has(t.root) && t.root !== seed.root) t.root.release();
    };
    // A collected gradient may be summed into in place when its storage is this entry's
    // alone: held once, and neither a leaf, a recorded forward tensor nor the seed.
    const exclusive = (t: FTensor): boolean =>
      t.dtype === 'f32' && refs.get(t.root) === 1 && t.root !== seed.root && !this.#tracked.has(t.root) && !this.#leaves.has(t.root);
    grads.set(output, seed);
    hold(seed);
    for (let i = this.#nodes.length - 1; i >= 0; i--) {
      const node = this.#nodes[i];
      if (node === undefined) continue;
      const g = grads.get(node.output);
      if (g !== undefined) {
        grads.delete(node.output);
        for (const input of node.inputs) {
          const recompute = input === undefined ? undefined : this.#remat.get(input);
          if (input !== undefined && recompute !== undefined && input.released) input.takeStorage(recompute());
        }
        const offered = new Map<number, FTensor>();
        const into: AccumulateInto = (j) => {
          const input = node.inputs[j];
          const prev = input === undefined || this.#leaves.has(input) ? undefined : grads.get(input);
          if (prev === undefined || !exclusive(prev)) return undefined;
          offered.set(j, prev);
          return prev;
        };
        const inputGrads = node.backward(g, sink, into);
        const returned: FTensor[] = [];
        node.inputs.forEach((input, j) => {
          const gi = inputGrads[j];
          if (input === undefined || gi === undefined || !this.#tracked.has(input)) return;
          returned.push(gi);
          if (this.#leaves.has(input)) {
            sink(input, gi);
            return;
          }
          const prev = grads.get(input);
          if (offered.get(j) === gi) return; // the rule accumulated into it (AccumulateInto)
          if (prev === undefined) {
            grads.set(input, gi);
            hold(gi);
          } else if (exclusive(prev) && gi.root !== prev.root && gi.dtype === prev.dtype) {
            backend.addScaledInPlace(prev, gi, 1); // no new (N, C) tensor to fault in
          } else {
            const sum = backend.addScaled(prev, gi, 1);
            grads.set(input, sum);
            hold(sum);
            drop(prev);
            freeIfUnheld(prev);
          }
        });
        drop(g);
        freeIfUnheld(g);
        for (const gi of returned) freeIfUnheld(gi);
      }
      // A view's storage belongs to an earlier node's output, which may still be needed.
      if (node.output.root === node.output) freeIfUnheld(node.output);
    }
    this.#nodes.length = 0;
    this.#remat.clear();
  }
}
