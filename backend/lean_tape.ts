/**
 * Back-propagation that frees memory as it goes.
 *
 * TF.js keeps every intermediate gradient of a tape, and every tensor its
 * nodes saved for the backward pass, until the whole backward pass ends: a
 * tape over a ResNet holds its activations about three times over at the
 * peak. {@linkcode leanTape} marks the nodes that a function records so that,
 * during the backward pass, each node's output gradients and saved tensors are
 * released as soon as the pass has moved past it; nothing reads them again.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

type GradFn = (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;

/** The parts of a TF.js tape node this module touches. */
interface TapeNode {
  saved?: tf.Tensor[];
  gradient?: GradFn;
}

interface EngineState {
  activeTape: TapeNode[] | null;
  gradientDepth: number;
}

/** What the previous node of a backward pass left to free. */
interface Pending {
  dys: tf.Tensor[];
  saved: tf.Tensor[];
}

/**
 * Calls `f` (inside a `tf.grads`/`tf.variableGrads`/`engine().gradients`
 * function) and makes the nodes it records release their output gradients and
 * saved tensors during the backward pass, as soon as the pass is done with
 * them. The gradients are unchanged; only the peak memory falls.
 *
 * Take gradients only with respect to tensors made outside `f` (variables,
 * inputs): the gradient of a tensor that `f` computes is released once the
 * pass moves past it. Outside a gradient function (no tape), it just
 * calls `f`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { leanTape, useBackend } from "@scaling-vicreg/backend";
 * await useBackend("cpu");
 * const w = tf.variable(tf.tensor1d([1, 2, 3]));
 * const { grads } = tf.variableGrads(
 *   () => leanTape(() => tf.sum(tf.square(tf.relu(w)))),
 *   [w],
 * );
 * console.log(Array.from(await grads[w.name].data())); // [2, 4, 6]
 * ```
 *
 * @typeParam T What `f` returns.
 * @param f The forward computation.
 * @returns What `f` returns.
 */
export function leanTape<T>(f: () => T): T {
  const state = (tf.engine() as unknown as { state: EngineState }).state;
  const tape = state.activeTape;
  const start = tape?.length ?? 0;
  const result = f();
  if (tape === null || tape === undefined) return result;
  const pass: { pending: Pending | null; first: boolean } = {
    pending: null,
    first: true,
  };
  for (let i = start; i < tape.length; i++) {
    const node = tape[i];
    const gradient = node.gradient;
    if (gradient === undefined) continue;
    node.gradient = (dys) => {
      if (state.gradientDepth === 0 && pass.pending !== null) {
        tf.dispose(pass.pending.dys);
        tf.dispose(pass.pending.saved);
      }
      const owned = dys.filter((d): d is tf.Tensor => d !== null);
      pass.pending = {
        // The first node the pass reaches produced the differentiated value:
        // its gradient may be the caller's `dy`, never ours to free.
        dys: pass.first ? [] : owned,
        saved: node.saved ?? [],
      };
      pass.first = false;
      const grads = gradient(dys);
      const mine = new Set<tf.Tensor>(owned);
      const out: Record<string, () => tf.Tensor> = {};
      for (const [name, get] of Object.entries(grads)) {
        // A gradient function may hand an upstream gradient through as is;
        // a clone keeps it alive once that upstream one is freed.
        out[name] = () => {
          const g = get();
          return mine.has(g) ? g.clone() : g;
        };
      }
      return out;
    };
  }
  return result;
}
