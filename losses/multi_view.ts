/**
 * VICReg over more than two views (multi-crop: G global and M local crops of
 * each image), as VICRegL's `global_loss` and `local_loss` define it
 * (Bardes, Ponce & LeCun 2022b, `main_vicregl.py`): every global view is
 * compared with every other view, and every view is regularised on its own
 * batch. With two global views and no local ones both reduce exactly to the
 * two-view losses ({@linkcode vicregLoss}, {@linkcode localLoss}).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { meanSquaredError } from "./_ops.ts";
import {
  branchSettings,
  branchTerms,
  checkBatch,
  checkEmbeddings,
  weightedLoss,
} from "./_branch.ts";
import {
  resolveVicregOptions,
  type VicregOptions,
  type VicregTerms,
} from "./vicreg.ts";
import {
  type GridSize,
  localLoss,
  type LocalLossOptions,
  type ViewGeometry,
} from "./local.ts";

/** The view-count option shared by {@linkcode multiViewLoss} and {@linkcode multiViewLocalLoss}. */
export interface GlobalViewsOption {
  /**
   * G: the first G views are the global ones (each compared with every
   * other view); the rest are local (compared with the global ones only).
   * @default {2}
   */
  globalViews?: number;
}

/** Options of {@linkcode multiViewLoss}: VICReg's options plus G. */
export interface MultiViewOptions extends VicregOptions, GlobalViewsOption {}

/** The defaults of {@linkcode GlobalViewsOption} (VICRegL's two global crops). */
export const DEFAULT_MULTI_VIEW_OPTIONS: Readonly<{ globalViews: number }> =
  Object.freeze({ globalViews: 2 });

/** One compared pair of views and how many of the ordered pairs it stands for. */
export interface ViewPair {
  /** The index of a global view. */
  first: number;
  /** The index of the other view (global or local), `> first`. */
  second: number;
  /** 2 when both are global ((first, second) and (second, first)), else 1. */
  weight: number;
}

/**
 * The pairs of views that multi-crop compares: VICRegL's ordered pairs
 * `(i, j)`, `i < G`, `j ≠ i`, `j < V` (G·(V − 1) of them), folded into
 * unordered pairs with a weight, because every pair term here is symmetric
 * (the two orders of two global views give the same value).
 *
 * @param views V, the number of views (G global first, then the local ones).
 * @param globalViews G, the number of global views.
 * @returns The pairs, first view ascending, then second; their weights sum
 * to G·(V − 1).
 * @throws {RangeError} When V < 2 or G is not an integer in [1, V].
 *
 * @example
 * ```ts
 * import { viewPairs } from "@scaling-vicreg/losses";
 * // 2 global + 2 local views: (0,1) twice, (0,2), (0,3), (1,2), (1,3)
 * const pairs = viewPairs(4, 2);
 * if (pairs.reduce((s, p) => s + p.weight, 0) !== 6) throw new Error();
 * ```
 */
export function viewPairs(views: number, globalViews: number): ViewPair[] {
  if (!Number.isInteger(views) || views < 2) {
    throw new RangeError(
      `Expected at least 2 views for a multi-view loss: received ${views}`,
    );
  }
  if (
    !Number.isInteger(globalViews) || globalViews < 1 || globalViews > views
  ) {
    throw new RangeError(
      `Expected "globalViews" to be an integer in [1, ${views}] (the number of views): received ${globalViews}`,
    );
  }
  const pairs: ViewPair[] = [];
  for (let i = 0; i < globalViews; i++) {
    for (let j = i + 1; j < views; j++) {
      pairs.push({ first: i, second: j, weight: j < globalViews ? 2 : 1 });
    }
  }
  return pairs;
}

/**
 * VICReg over V views `z_v: [N, D]`, the first G global (VICRegL's
 * `global_loss` written as a formula; P = the G·(V − 1) ordered pairs
 * `(i, j)`, `i < G`, `j ≠ i`):
 *
 * - invariance = 1/|P| Σ_{(i,j)∈P} mean over N·D of (z_i − z_j)²;
 * - variance = 1/V Σ_v mean_d relu(γ − std(z_v)_d), each view's std on its
 *   own batch (as {@linkcode vicregLoss}: unbiased, or biased for
 *   `variant: "paper-code"`);
 * - covariance = 2/V Σ_v Σ_{a≠b} C(z_v)_ab² / covDivisor;
 * - loss = simCoeff·invariance + stdCoeff·variance + covCoeff·covariance.
 *
 * At V = G = 2 this is {@linkcode vicregLoss}(z_0, z_1) exactly (the same
 * floats). The one departure from VICRegL's code is the factor 2 of the
 * covariance: VICRegL averages it over the views, which at two views is half
 * of VICReg's sum over its two branches; here VICReg's convention is kept, so
 * that a two-view run is unchanged (pass `covCoeff / 2` for VICRegL's
 * weighting).
 *
 * @param embeddings The V views' embeddings, global views first, each
 * `[N, D]` float32 (row k of every view is the same image).
 * @param options VICReg's options and `globalViews`; see
 * {@linkcode MultiViewOptions}.
 * @returns The weighted total and the three unweighted terms (the caller
 * disposes them).
 * @throws {TypeError} When a view is not a float32 `[N, D]` tensor or the
 * views' shapes differ.
 * @throws {RangeError} When V < 2, G is out of range, N < 2 or an option is
 * out of range.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { multiViewLoss } from "@scaling-vicreg/losses";
 * await useBackend("cpu");
 * const views = [1, 2, 3, 4].map((s) =>
 *   tf.randomNormal([8, 4], 0, 1, "float32", s) as tf.Tensor2D
 * );
 * const terms = multiViewLoss(views, { globalViews: 2 }); // 2 global + 2 local
 * tf.dispose([...views, terms]);
 * ```
 */
export function multiViewLoss(
  embeddings: readonly tf.Tensor2D[],
  options: MultiViewOptions = {},
): VicregTerms {
  const { globalViews = DEFAULT_MULTI_VIEW_OPTIONS.globalViews, ...rest } =
    options;
  if (!Array.isArray(embeddings)) {
    throw new TypeError(
      `Expected "embeddings" to be an array of [N, D] tensors: received ${embeddings}`,
    );
  }
  const pairs = viewPairs(embeddings.length, globalViews);
  embeddings.forEach((z, v) => checkEmbeddings(z, `embeddings[${v}]`));
  const [n, d] = embeddings[0].shape;
  embeddings.forEach((z, v) => {
    if (z.shape[0] !== n || z.shape[1] !== d) {
      throw new TypeError(
        `Expected every view of the same shape [N, D] = [${n}, ${d}]: received [${z.shape}] for "embeddings[${v}]"`,
      );
    }
  });
  checkBatch(n, d, '"embeddings"');
  const o = resolveVicregOptions(rest);
  const settings = branchSettings(o, n, d);
  const views = embeddings.length;
  return tf.tidy(() => {
    // Σ_{(i,j)∈P} mse(z_i, z_j) / |P|: scalars
    const invariance = weightedMean(
      pairs.map((p) => ({
        value: meanSquaredError(embeddings[p.first], embeddings[p.second]),
        weight: p.weight,
      })),
    );
    // per view: z_v: [N, D] -> hinge, offDiagonal: scalars
    const branches = embeddings.map((z) => branchTerms(z, settings));
    const variance = tf.div(
      sumAll(branches.map((b) => b.hinge)),
      views,
    ) as tf.Scalar;
    const covariance = tf.mul(
      sumAll(branches.map((b) => b.offDiagonal)),
      2 / views,
    ) as tf.Scalar;
    const loss = weightedLoss(invariance, variance, covariance, o);
    return { loss, invariance, variance, covariance };
  });
}

/**
 * Options of {@linkcode multiViewLocalLoss}: the local loss's options with
 * one grid and one geometry per view instead of two, plus G.
 */
export interface MultiViewLocalOptions
  extends
    Omit<LocalLossOptions, "grid" | "grid2" | "geometry1" | "geometry2">,
    GlobalViewsOption {
  /** For `"location"`: each view's feature-map grid (`h·w` = its L), length V. */
  grids?: readonly GridSize[];
  /**
   * For `"location"`: each view's crop geometry, one `ViewGeometry` per
   * sample, length V.
   */
  geometries?: readonly (readonly ViewGeometry[])[];
}

/**
 * The local (feature-map) loss over V views `maps_v: [N, L_v, d]`, the first
 * G global (VICRegL's `local_loss`): the mean over the G·(V − 1) ordered
 * pairs `(i, j)`, `i < G`, `j ≠ i`, of {@linkcode localLoss}(maps_i,
 * maps_j) with the configured matching, term by term. A global crop's map
 * and a local crop's smaller one can be compared by `"location"` or
 * `"feature"` matching; `"index"` needs equal grids (a `TypeError`
 * otherwise).
 *
 * At V = G = 2 this is {@linkcode localLoss}(maps_0, maps_1) exactly. Unlike
 * VICRegL's code, which keeps `--num-matches 20 4` (more matches from the
 * larger map), one `topK` serves both directions (clamped to each map's
 * cells), so each pair's loss is symmetric.
 *
 * @param maps The V views' local descriptors, global views first, each
 * `[N, L_v, d]` float32.
 * @param options The local loss's options, `grids`, `geometries` and
 * `globalViews`; see {@linkcode MultiViewLocalOptions}.
 * @returns The weighted total and the three unweighted terms, each the mean
 * over the pairs.
 * @throws {TypeError} As {@linkcode localLoss}, naming the pair; or when
 * `grids`/`geometries` do not have one entry per view.
 * @throws {RangeError} When V < 2 or G is out of range, or as
 * {@linkcode localLoss}.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { multiViewLocalLoss } from "@scaling-vicreg/losses";
 * await useBackend("cpu");
 * // 2 global views with 3×3 maps, 1 local view with a 2×2 map
 * const maps = [9, 9, 4].map((l, s) =>
 *   tf.randomNormal([4, l, 8], 0, 1, "float32", s) as tf.Tensor3D
 * );
 * const terms = multiViewLocalLoss(maps, { matching: "feature", topK: 2 });
 * tf.dispose([...maps, terms]);
 * ```
 */
export function multiViewLocalLoss(
  maps: readonly tf.Tensor3D[],
  options: MultiViewLocalOptions = {},
): VicregTerms {
  const {
    globalViews = DEFAULT_MULTI_VIEW_OPTIONS.globalViews,
    grids,
    geometries,
    ...local
  } = options;
  if (!Array.isArray(maps)) {
    throw new TypeError(
      `Expected "maps" to be an array of [N, L, d] tensors: received ${maps}`,
    );
  }
  const pairs = viewPairs(maps.length, globalViews);
  for (const [name, list] of [["grids", grids], ["geometries", geometries]]) {
    if (list !== undefined && list.length !== maps.length) {
      throw new TypeError(
        `Expected local loss option "${name}" with one entry per view (${maps.length}): received ${list.length}`,
      );
    }
  }
  return tf.tidy(() => {
    const terms = pairs.map((p) => {
      const pairOptions: LocalLossOptions = {
        ...local,
        grid: grids?.[p.first],
        grid2: grids?.[p.second],
        geometry1: geometries?.[p.first],
        geometry2: geometries?.[p.second],
      };
      try {
        return localLoss(maps[p.first], maps[p.second], pairOptions);
      } catch (e) {
        if (!(e instanceof TypeError || e instanceof RangeError)) throw e;
        const Kind = e instanceof TypeError ? TypeError : RangeError;
        throw new Kind(
          `Views ${p.first} and ${p.second} of the multi-view local loss: ${e.message}`,
          { cause: e },
        );
      }
    });
    const mean = (key: keyof VicregTerms) =>
      weightedMean(
        terms.map((t, k) => ({ value: t[key], weight: pairs[k].weight })),
      );
    return {
      loss: mean("loss"),
      invariance: mean("invariance"),
      variance: mean("variance"),
      covariance: mean("covariance"),
    };
  });
}

/**
 * Σ_k w_k·x_k / Σ_k w_k over scalars. Summed one by one (not `tf.addN`:
 * WebGPU's AddN with 8 or more inputs writes nothing).
 */
function weightedMean(
  terms: readonly { value: tf.Scalar; weight: number }[],
): tf.Scalar {
  const total = terms.reduce((s, t) => s + t.weight, 0);
  return tf.div(
    sumAll(terms.map((t) => tf.mul(t.value, t.weight) as tf.Scalar)),
    total,
  ) as tf.Scalar;
}

/** x_0 + x_1 + … in order, over scalars (see {@linkcode weightedMean}). */
function sumAll(values: readonly tf.Scalar[]): tf.Scalar {
  return values.slice(1).reduce(
    (s, x) => tf.add(s, x) as tf.Scalar,
    values[0],
  );
}
