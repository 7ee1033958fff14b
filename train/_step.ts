// The loss and gradients of one VICReg step (private to train/): jointly (one
// tape over both views) or view by view with block-wise recomputation, which
// gives the same update in a fraction of the memory.
import * as tf from "@tensorflow/tfjs-core";
import { leanTape } from "@scaling-vicreg/backend";
import {
  embeddingStd,
  localLoss,
  vicregLoss,
  type ViewGeometry,
} from "@scaling-vicreg/losses";
import type { ResNetOutput } from "@scaling-vicreg/models";
import type { PretrainConfig } from "./config.ts";
import type { VicregNetworks } from "./pretrain.ts";

/** The loss settings of a step, resolved once per run. */
export interface StepSettings {
  /** The run's configuration (local loss, matching, weights). */
  config: PretrainConfig;
  /** VICReg coefficients and variant. */
  lossOptions: {
    simCoeff: number;
    stdCoeff: number;
    covCoeff: number;
    variant: "vicreg" | "paper-code";
  };
  /** Output width of the global projector. */
  projectorDim: number;
}

/** What {@linkcode stepGradients} returns; the caller disposes every tensor. */
export interface StepGradients {
  /** The total loss. */
  value: tf.Scalar;
  /**
   * Invariance, variance, covariance, mean embedding std, collapsed
   * fraction, and the local loss when it is on.
   */
  metrics: tf.Scalar[];
  /** d(total)/d(parameter) by prefixed parameter name. */
  grads: Map<string, tf.Tensor>;
}

/**
 * How a step back-propagates, from fastest and largest to slowest and
 * smallest: `joint` (one tape over both views), `mixed` (view 1 recomputed
 * block by block, view 2 on one tape: one more forward pass, about half the
 * memory), `view-by-view` (both views recomputed block by block: two more
 * forward passes, one residual block's activations at a time).
 */
export type StepMode = "joint" | "mixed" | "view-by-view";

/**
 * Loss and gradients of one step on the two views `[N, H, W, 3]`.
 *
 * `joint`: one `leanTape`'d tape over both views.
 *
 * `view-by-view`: embed both views without a tape
 * (`ResNet.forwardCheckpointed`, which updates the BatchNorm running
 * statistics, view 1 then view 2, as the joint pass does), take the
 * gradients of the heads (projectors + losses) w.r.t. their parameters and
 * w.r.t. each view's embedding `[N, E]` and feature map `[N, h, w, E]`, then
 * back-propagate each view's backbone block by block (recomputed, running
 * statistics frozen) with both upstream gradients. BatchNorm statistics are
 * per view, so this is the joint step's update at the cost of one more
 * backbone forward pass per view; only one residual block's activations and
 * gradients are alive at a time.
 *
 * `mixed`: embed view 1 without a tape (running statistics first, as in the
 * joint pass), then take one tape over view 2's backbone and the heads with
 * view 1's embedding as an input, and back-propagate view 1 block by block
 * with the gradient w.r.t. its embedding (and feature map).
 */
export function stepGradients(
  nets: VicregNetworks,
  params: Map<string, tf.Variable>,
  views: [tf.Tensor4D, tf.Tensor4D],
  geometry: [ViewGeometry[], ViewGeometry[]],
  settings: StepSettings,
  mode: StepMode,
): StepGradients {
  const useLocal = nets.localProjector !== undefined;
  const backbone = (x: tf.Tensor4D) =>
    nets.backbone.forward(x, { training: true, returnFeatureMap: useLocal });
  // A view without a tape: it keeps its outputs and its residual blocks'
  // inputs. `outputsOf` lists what the heads read of it.
  const checkpointed = (x: tf.Tensor4D) =>
    nets.backbone.forwardCheckpointed(x, {
      training: true,
      returnFeatureMap: useLocal,
    });
  type Run = ReturnType<typeof checkpointed>;
  const outputsOf = (run: Run): tf.Tensor[] =>
    useLocal ? [run.embedding, run.featureMap!] : [run.embedding];
  const metrics: tf.Scalar[] = [];
  const grads = new Map<string, tf.Tensor>();
  // Back-propagates a checkpointed view with its upstream gradients (the
  // embedding's, then the feature map's) and adds to the backbone's sums.
  const backpropagate = (run: Run, dy: tf.Tensor[]) => {
    const part = run.backward({
      embedding: dy[0] as tf.Tensor2D,
      featureMap: useLocal ? dy[1] as tf.Tensor4D : undefined,
    });
    run.dispose();
    tf.dispose(dy);
    for (const [name, g] of part) {
      const key = `backbone.${name}`;
      const sum = grads.get(key);
      if (sum === undefined) {
        grads.set(key, g);
      } else {
        grads.set(key, tf.add(sum, g));
        tf.dispose([sum, g]);
      }
    }
  };
  if (mode === "mixed") {
    const run = checkpointed(views[0]);
    const first = outputsOf(run);
    const names = [...params.keys()];
    const { value, grads: all } = tf.engine().gradients(
      () =>
        leanTape(() =>
          headsLoss(
            nets,
            { embedding: run.embedding, featureMap: run.featureMap },
            backbone(views[1]),
            geometry,
            settings,
            metrics,
          )
        ),
      [...params.values(), ...first],
      undefined,
      true,
    );
    names.forEach((name, i) => grads.set(name, all[i]));
    backpropagate(run, all.slice(names.length));
    return { value: value as tf.Scalar, metrics, grads };
  }
  if (mode === "joint") {
    const names = [...params.keys()];
    const { value, grads: byId } = tf.variableGrads(
      () =>
        leanTape(() =>
          headsLoss(
            nets,
            backbone(views[0]),
            backbone(views[1]),
            geometry,
            settings,
            metrics,
          )
        ),
      [...params.values()],
    );
    for (const name of names) grads.set(name, byId[params.get(name)!.name]);
    return { value, metrics, grads };
  }
  const heads = [...params].filter(([name]) => !name.startsWith("backbone."));
  const runs = views.map(checkpointed);
  const features = runs.flatMap(outputsOf);
  const perView = useLocal ? 2 : 1;
  const { value, grads: headGrads } = tf.engine().gradients(
    () => {
      const [a, b] = runs.map((o): ResNetOutput => ({
        embedding: o.embedding,
        featureMap: o.featureMap,
      }));
      return headsLoss(nets, a, b, geometry, settings, metrics);
    },
    [...heads.map(([, v]) => v), ...features],
    undefined,
    true,
  );
  heads.forEach(([name], i) => grads.set(name, headGrads[i]));
  const upstream = headGrads.slice(heads.length);
  runs.forEach((run, v) =>
    backpropagate(run, upstream.slice(v * perView, (v + 1) * perView))
  );
  return { value: value as tf.Scalar, metrics, grads };
}

/**
 * VICReg on the two views' projections (+ α × the local loss on their
 * feature maps); pushes the kept metric scalars onto `metrics`.
 */
function headsLoss(
  nets: VicregNetworks,
  a: ResNetOutput,
  b: ResNetOutput,
  geometry: [ViewGeometry[], ViewGeometry[]],
  settings: StepSettings,
  metrics: tf.Scalar[],
): tf.Scalar {
  const { config, lossOptions, projectorDim } = settings;
  const za = nets.projector.forward(a.embedding, { training: true });
  const zb = nets.projector.forward(b.embedding, { training: true });
  const global = vicregLoss(za, zb, lossOptions);
  const std = embeddingStd(za, { threshold: 0.01 });
  const kept = [
    global.invariance,
    global.variance,
    global.covariance,
    std.meanStd,
    std.fractionBelow,
  ];
  let total: tf.Scalar = global.loss;
  if (nets.localProjector !== undefined) {
    const local = nets.localProjector;
    const project = (f: tf.Tensor4D) => {
      const [n, h, w, c] = f.shape;
      // f: [N, h, w, C] -> [N·h·w, C] -> projector -> [N, h·w, D]
      const z = local.forward(tf.reshape(f, [n * h * w, c]) as tf.Tensor2D, {
        training: true,
      });
      return tf.reshape(z, [n, h * w, z.shape[1]]) as tf.Tensor3D;
    };
    const [, h, w] = a.featureMap!.shape;
    const terms = localLoss(project(a.featureMap!), project(b.featureMap!), {
      ...lossOptions,
      matching: config.localMatching as "index" | "location" | "feature",
      topK: config.localTopK,
      grid: { h, w },
      geometry1: geometry[0],
      geometry2: geometry[1],
      covDivisor: config.lossVariant === "paper-code"
        ? projectorDim
        : undefined,
    });
    kept.push(terms.loss);
    total = tf.add(total, tf.mul(terms.loss, config.localLossWeight));
  }
  for (const t of kept) metrics.push(tf.keep(t));
  return total;
}

/**
 * Bytes that every kernel of one training-mode backbone forward pass outputs,
 * per image: the size of what a training tape over one view keeps alive,
 * measured with `tf.profile` on a batch of 2 (running statistics left
 * alone). It follows the backend: a fused BatchNorm kernel (blas with
 * oneDNN) outputs about half the bytes of BatchNorm as tensor ops.
 */
export async function activationBytesPerView(
  backbone: VicregNetworks["backbone"],
  size: number,
): Promise<number> {
  const x = tf.zeros([2, size, size, 3]) as tf.Tensor4D;
  try {
    const info = await tf.profile(() =>
      backbone.forward(x, { training: true, updateRunningStats: false })
        .embedding
    );
    tf.dispose(info.result as tf.Tensor);
    const bytes = info.kernels.reduce(
      (a, k) => a + Math.max(0, k.bytesAdded),
      0,
    );
    return bytes / 2;
  } finally {
    x.dispose();
  }
}

/** Tensor bytes a step may take in the 4 GiB wasm heap. */
export const STEP_BUDGET_BYTES = 3 * 2 ** 30;

/**
 * The step mode for the `step` key, and why.
 *
 * `auto` is `joint` off the wasm heap. On it (wasm, blas) it is the fastest
 * mode whose estimated peak fits {@linkcode STEP_BUDGET_BYTES}: the joint
 * step takes at most 1.2 times the activation bytes per view and image
 * times 2 views times the batch (the wasm heap's peak over that product,
 * measured on `blas`: 0.88 for ResNet-18 at 32 px, batch 64, and 0.91 for
 * ResNet-50 at 96 px, batch 32, with oneDNN's fused BatchNorm; 1.19 for
 * ResNet-18 without it), ×1.5 with the local loss (its feature maps and
 * projector); `mixed` about half of that; `view-by-view` one residual
 * block's worth.
 *
 * @param step The `step` key: `auto`, `joint`, `mixed` or `view-by-view`.
 * @param wasmHeap Whether the backend keeps tensors in the wasm heap.
 * @param perViewBytes {@linkcode activationBytesPerView}, for `auto`.
 * @param batch The batch size.
 * @param local Whether the local loss is on.
 * @returns The mode and a one-line reason.
 */
export function chooseStepMode(
  step: string,
  wasmHeap: boolean,
  perViewBytes: number,
  batch: number,
  local: boolean,
): { mode: StepMode; reason: string } {
  if (step !== "auto") {
    return { mode: step as StepMode, reason: "set by the step key" };
  }
  if (!wasmHeap) {
    return { mode: "joint", reason: "tensors are not in the wasm heap" };
  }
  const joint = 1.2 * perViewBytes * 2 * batch * (local ? 1.5 : 1);
  const gib = (b: number) => (b / 2 ** 30).toFixed(1);
  if (joint <= STEP_BUDGET_BYTES) {
    return {
      mode: "joint",
      reason: `an estimated ${gib(joint)} GiB fits the 4 GiB wasm heap`,
    };
  }
  if (joint / 2 <= STEP_BUDGET_BYTES) {
    return {
      mode: "mixed",
      reason: `a joint step's estimated ${
        gib(joint)
      } GiB would not fit the 4 GiB wasm heap; one view's ${
        gib(joint / 2)
      } GiB does`,
    };
  }
  return {
    mode: "view-by-view",
    reason: `one view's estimated ${
      gib(joint / 2)
    } GiB would not fit the 4 GiB wasm heap`,
  };
}
