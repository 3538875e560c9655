// Tape-based reverse-mode autodiff. Ops (ops.ts) record one node per call whose inputs
// carry gradient; backward() walks the nodes in reverse, accumulating gradients for
// intermediates in a map and handing each leaf's contributions to a sink as soon as
// they are produced (so weight gradients go straight into their flat buffer).
import type { Backend, FTensor } from '../backend/backend.js';
import type { Tensor } from '../tensor/tensor.js';

/** Receives every gradient contribution for a watched leaf (sum them). */
export type LeafSink = (leaf: Tensor, grad: FTensor) => void;

/**
 * Computes the gradients of a node's inputs (undefined = none) from its output's. `sink`
 * is the leaf sink of the running backward pass (checkpointed blocks pass their
 * parameters' gradients straight to it).
 */
export type BackwardFn = (gOut: FTensor, sink: LeafSink) => ReadonlyArray<FTensor | undefined>;

interface Node {
  inputs: ReadonlyArray<Tensor | undefined>;
  output: Tensor;
  backward: BackwardFn;
}

export class Tape {
  readonly #nodes: Node[] = [];
  readonly #tracked = new Set<Tensor>();
  readonly #leaves = new Set<Tensor>();

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
   */
  backward(backend: Backend, output: Tensor, seed: FTensor, sink: LeafSink): void {
    const grads = new Map<Tensor, FTensor>([[output, seed]]);
    for (let i = this.#nodes.length - 1; i >= 0; i--) {
      const node = this.#nodes[i];
      if (node === undefined) continue;
      const g = grads.get(node.output);
      if (g === undefined) continue;
      grads.delete(node.output);
      const inputGrads = node.backward(g, sink);
      node.inputs.forEach((input, j) => {
        const gi = inputGrads[j];
        if (input === undefined || gi === undefined || !this.#tracked.has(input)) return;
        if (this.#leaves.has(input)) {
          sink(input, gi);
          return;
        }
        const prev = grads.get(input);
        grads.set(input, prev === undefined ? gi : backend.addScaled(prev, gi, 1));
      });
    }
    this.#nodes.length = 0;
  }
}
