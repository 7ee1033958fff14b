/**
 * Local VICReg losses on projected local descriptors `[N, L, D]` (L = h·w
 * cells of the last feature map, row-major over the h×w grid): the scaling
 * paper's same-index loss, and VICRegL's matched losses (Bardes, Ponce &
 * LeCun 2022b) that pair cells by image location or by embedding distance.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  resolveVicregOptions,
  vicregLoss,
  type VicregOptions,
  type VicregTerms,
} from "./vicreg.ts";
import { gatherRows } from "./_ops.ts";

/**
 * Where a view came from: its crop box in the source image and whether it
 * was flipped, as `augment` reports it.
 */
export interface ViewGeometry {
  /**
   * Crop box `[x0, y0, x1, y1]` in normalised source-image coordinates
   * (0 = left/top edge, 1 = right/bottom edge), `x0 < x1`, `y0 < y1`.
   */
  box: readonly [number, number, number, number];
  /** Whether the crop was flipped horizontally after cropping. */
  flip: boolean;
}

/** The size of a feature-map grid: `h` rows by `w` columns. */
export interface GridSize {
  /** Rows. */
  h: number;
  /** Columns. */
  w: number;
}

/** How cells of the two views are paired. */
export type LocalMatching = "index" | "location" | "feature";

/** Options of {@linkcode localLoss}: the VICReg options plus the matching. */
export interface LocalLossOptions extends VicregOptions {
  /**
   * `"index"`: cell k of view 1 with cell k of view 2 (the scaling paper's
   * code). `"location"`: each cell with the nearest cell of the other view
   * in source-image coordinates (VICRegL). `"feature"`: each cell with its L2
   * nearest neighbour among the other view's cells of the same image
   * (VICRegL).
   * @default {"index"}
   */
  matching?: LocalMatching;
  /**
   * For `"location"` and `"feature"`: the matches kept per image and
   * direction, the ones with the smallest distance (VICRegL's
   * `--num-matches`; 4 is its value for 96 px crops). Clamped to L.
   * @default {4}
   */
  topK?: number;
  /**
   * For `"location"`: pairs whose centres are farther apart than this (in
   * normalised image units) are dropped, so that cells with no counterpart
   * in the other crop do not enter the loss. For `"feature"`: pairs whose
   * descriptors are farther apart (L2) are dropped. `Infinity` keeps the
   * `topK` nearest whatever their distance, as VICRegL does; feature
   * matching then runs wholly on the device, while a finite value reads
   * the distances back synchronously (which Deno's WebGPU cannot do).
   * @default {Infinity}
   */
  maxDistance?: number;
  /**
   * For `"location"`: the grid of view 1 (and of view 2 unless `grid2` is
   * given); `h·w` must equal its L.
   */
  grid?: GridSize;
  /**
   * For `"location"`: the grid of view 2 when it differs from view 1's (a
   * smaller local crop's feature map); `h·w` must equal its L.
   * @default {grid}
   */
  grid2?: GridSize;
  /** For `"location"`: the geometry of each sample's first view, length N. */
  geometry1?: readonly ViewGeometry[];
  /** For `"location"`: the geometry of each sample's second view, length N. */
  geometry2?: readonly ViewGeometry[];
}

/** The defaults of the matching fields of {@linkcode LocalLossOptions}. */
export const DEFAULT_LOCAL_LOSS_OPTIONS: Readonly<{
  matching: LocalMatching;
  topK: number;
  maxDistance: number;
}> = Object.freeze({
  matching: "index",
  topK: 4,
  maxDistance: Infinity,
});

/** Pairs of cells: `source[k]` of one view matched to `target[k]` of the other. */
export interface CellMatches {
  /** Cell indices (row-major in the grid) in the view being matched. */
  source: Int32Array;
  /** The matched cell of the other view for each source cell. */
  target: Int32Array;
  /** The distance between each pair. */
  distance: Float32Array;
}

/** Options of {@linkcode nearestMatches}. */
export interface NearestMatchesOptions {
  /** Matches kept (the smallest distances); clamped to the source count. @default {4} */
  topK?: number;
  /** Pairs farther apart than this are dropped. @default {Infinity} */
  maxDistance?: number;
}

/**
 * The centres of the h×w cells of a view in source-image coordinates,
 * row-major over the grid, as `[x, y]` pairs: `[h·w·2]`. Cell (r, c) covers
 * the crop fraction `[c/w, (c+1)/w] × [r/h, (r+1)/h]` of the *output* view;
 * with `flip` the output column u came from crop column 1 − u.
 *
 * @param geometry The view's crop box and flip.
 * @param h Grid rows.
 * @param w Grid columns.
 * @returns `[x0, y0, x1, y1, …]` for cells 0 … h·w − 1.
 * @throws {RangeError} When h or w is not a positive integer or the box is
 * empty.
 *
 * @example
 * ```ts
 * import { gridCenters } from "@scaling-vicreg/losses";
 * const c = gridCenters({ box: [0, 0, 1, 1], flip: true }, 1, 2);
 * // cell 0 (left in the flipped view) shows the right half of the image
 * if (c[0] !== 0.75 || c[2] !== 0.25) throw new Error();
 * ```
 */
export function gridCenters(
  geometry: ViewGeometry,
  h: number,
  w: number,
): Float32Array {
  checkGrid({ h, w }, "grid");
  checkGeometry(geometry, "geometry");
  const [x0, y0, x1, y1] = geometry.box;
  const out = new Float32Array(h * w * 2);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const u = (c + 0.5) / w;
      const v = (r + 0.5) / h;
      const k = (r * w + c) * 2;
      out[k] = x0 + (geometry.flip ? 1 - u : u) * (x1 - x0);
      out[k + 1] = y0 + v * (y1 - y0);
    }
  }
  return out;
}

/**
 * VICRegL's matching rule for one image: every source cell takes its nearest
 * target cell (ties: the lowest index), then the `topK` pairs with the
 * smallest distance are kept (ties: the lowest source index), returned in
 * source order; pairs beyond `maxDistance` are dropped.
 *
 * @param distances Row-major `[S, T]` distances from each source cell to
 * each target cell.
 * @param targets T, the number of target cells.
 * @param options `topK` and `maxDistance`.
 * @returns The kept pairs.
 * @throws {RangeError} When the distances are not a whole number of rows or
 * `topK` is not a positive integer.
 *
 * @example
 * ```ts
 * import { nearestMatches } from "@scaling-vicreg/losses";
 * // 2 source cells, 3 target cells
 * const m = nearestMatches(Float32Array.of(5, 1, 9, 0.5, 7, 3), 3, { topK: 1 });
 * if (m.source[0] !== 1 || m.target[0] !== 0) throw new Error();
 * ```
 */
export function nearestMatches(
  distances: Float32Array,
  targets: number,
  options: NearestMatchesOptions = {},
): CellMatches {
  const topK = options.topK ?? DEFAULT_LOCAL_LOSS_OPTIONS.topK;
  const maxDistance = options.maxDistance ??
    DEFAULT_LOCAL_LOSS_OPTIONS.maxDistance;
  checkTopK(topK);
  if (
    !Number.isInteger(targets) || targets < 1 ||
    distances.length % targets !== 0
  ) {
    throw new RangeError(
      `Expected "distances" of length S·targets with targets >= 1: received length ${distances.length} and targets ${targets}`,
    );
  }
  const sources = distances.length / targets;
  const nn = new Int32Array(sources);
  const best = new Float32Array(sources);
  for (let i = 0; i < sources; i++) {
    let arg = 0;
    let min = distances[i * targets];
    for (let j = 1; j < targets; j++) {
      const d = distances[i * targets + j];
      if (d < min) {
        min = d;
        arg = j;
      }
    }
    nn[i] = arg;
    best[i] = min;
  }
  const order = Array.from({ length: sources }, (_, i) => i)
    .sort((a, b) => best[a] - best[b] || a - b)
    .slice(0, Math.min(topK, sources))
    .filter((i) => best[i] <= maxDistance)
    .sort((a, b) => a - b);
  return {
    source: Int32Array.from(order),
    target: Int32Array.from(order, (i) => nn[i]),
    distance: Float32Array.from(order, (i) => best[i]),
  };
}

/**
 * Matches the cells of view 1 to the nearest cells of view 2 in source-image
 * coordinates (VICRegL's location matching for one image and one
 * direction), using {@linkcode gridCenters} and {@linkcode nearestMatches}.
 * The two grids may differ (`grid2`: a local crop's smaller feature map).
 * Distances are Euclidean in normalised image coordinates, so on a
 * non-square source image a horizontal step of one pixel counts 1/width and
 * a vertical one 1/height.
 *
 * @param geometry1 The view whose cells are matched.
 * @param geometry2 The view searched for the nearest cells.
 * @param options The grid of view 1 (`grid`) and of view 2 (`grid2`,
 * default `grid`), `topK` and `maxDistance`.
 * @returns Cells of view 1 (`source`) and their nearest cells of view 2.
 *
 * @example
 * ```ts
 * import { matchByLocation } from "@scaling-vicreg/losses";
 * const a = { box: [0, 0, 0.5, 0.5], flip: false } as const;
 * const b = { box: [0.25, 0, 0.75, 0.5], flip: false } as const;
 * const m = matchByLocation(a, b, { grid: { h: 2, w: 2 }, topK: 2 });
 * // the right column of a lies exactly on the left column of b
 * if (m.source.join() !== "1,3" || m.target.join() !== "0,2") throw new Error();
 * ```
 */
export function matchByLocation(
  geometry1: ViewGeometry,
  geometry2: ViewGeometry,
  options: NearestMatchesOptions & { grid: GridSize; grid2?: GridSize },
): CellMatches {
  const g1 = options.grid;
  const g2 = options.grid2 ?? g1;
  const p = gridCenters(geometry1, g1.h, g1.w);
  const q = gridCenters(geometry2, g2.h, g2.w);
  const l1 = g1.h * g1.w;
  const l2 = g2.h * g2.w;
  // distances: [L1, L2] row-major
  const distances = new Float32Array(l1 * l2);
  for (let i = 0; i < l1; i++) {
    for (let j = 0; j < l2; j++) {
      distances[i * l2 + j] = Math.hypot(
        p[2 * i] - q[2 * j],
        p[2 * i + 1] - q[2 * j + 1],
      );
    }
  }
  return nearestMatches(distances, l2, options);
}

/**
 * The local VICReg loss between the projected local descriptors of two
 * views, `z1: [N, L1, D]` and `z2: [N, L2, D]` (L = h·w cells, row-major
 * over the grid; L1 = L2 for `"index"`, while the matched modes pair a
 * global crop's map with a local crop's smaller one).
 *
 * - `"index"` (the scaling paper's code): both are reshaped to `[N·L, D]`
 *   and {@linkcode vicregLoss} compares descriptors at the same grid index.
 * - `"location"` / `"feature"` (VICRegL): for every image, each cell of view
 *   1 is paired with its nearest cell of view 2 (in source-image coordinates
 *   from `geometry1/2` and `grid`, or by L2 distance between descriptors),
 *   the `topK` closest pairs are kept ({@linkcode nearestMatches}), and the
 *   same is done from view 2 to view 1. Each direction's pairs, pooled over
 *   the batch into `[M, D]`, go through {@linkcode vicregLoss}; every term is
 *   the mean of the two directions. The selection itself carries no gradient
 *   (as VICRegL's `topk` indices).
 *
 * Differences from VICRegL's code: it computes the variance and covariance
 * per match slot across the batch (`[N, K, D]` statistics over N) and halves
 * each branch's covariance; here all matched pairs of a direction are pooled
 * into one `[N·K, D]` batch, exactly as the `"index"` mode pools all cells,
 * so the three modes differ only in which pairs they compare.
 *
 * @param z1 Local descriptors of view 1, `[N, L1, D]`, float32.
 * @param z2 Local descriptors of view 2, `[N, L2, D]`, float32.
 * @param options VICReg options plus the matching; see
 * {@linkcode LocalLossOptions}. For the scaling paper's code use
 * `{ variant: "paper-code", covDivisor: 1024 }` (the global projector size).
 * @returns The weighted total and the three unweighted terms.
 * @throws {TypeError} When `z1`/`z2` are not float32 rank-3 tensors with
 * the same N and D (and L, for `"index"`), or `"location"` lacks `grid`,
 * `geometry1` or `geometry2` of the right size.
 * @throws {RangeError} When an option is out of range or fewer than 2 pairs
 * remain in a direction.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { localLoss } from "@scaling-vicreg/losses";
 * await useBackend("cpu");
 * const z1 = tf.randomNormal([4, 9, 8], 0, 1, "float32", 1) as tf.Tensor3D;
 * const z2 = tf.randomNormal([4, 9, 8], 0, 1, "float32", 2) as tf.Tensor3D;
 * const terms = localLoss(z1, z2, { matching: "feature", topK: 4 });
 * tf.dispose([z1, z2, terms]);
 * ```
 */
export function localLoss(
  z1: tf.Tensor3D,
  z2: tf.Tensor3D,
  options: LocalLossOptions = {},
): VicregTerms {
  checkDescriptors(z1, "z1");
  checkDescriptors(z2, "z2");
  const {
    matching = DEFAULT_LOCAL_LOSS_OPTIONS.matching,
    topK = DEFAULT_LOCAL_LOSS_OPTIONS.topK,
    maxDistance = DEFAULT_LOCAL_LOSS_OPTIONS.maxDistance,
    grid,
    grid2 = grid,
    geometry1,
    geometry2,
    ...vicregOptions
  } = options;
  const [n, l, d] = z1.shape;
  const l2 = z2.shape[1];
  if (matching === "index" && l2 !== l) {
    throw new TypeError(
      `Expected "z1" and "z2" of the same shape [N, L, D] for matching "index" (cell k against cell k): received [${z1.shape}] and [${z2.shape}]; use matching "location" or "feature" for views of different grids`,
    );
  }
  if (z2.shape[0] !== n || z2.shape[2] !== d) {
    throw new TypeError(
      `Expected "z1" and "z2" with the same N and D ([N, L1, D] and [N, L2, D]): received [${z1.shape}] and [${z2.shape}]`,
    );
  }
  resolveVicregOptions(vicregOptions);
  if (matching === "index") {
    return tf.tidy(() =>
      // z: [N, L, D] -> [N·L, D], row k·L + c is cell c of image k
      vicregLoss(
        tf.reshape(z1, [n * l, d]),
        tf.reshape(z2, [n * l, d]),
        vicregOptions,
      )
    );
  }
  checkTopK(topK);
  if (!(maxDistance > 0)) {
    throw new RangeError(
      `Expected local loss option "maxDistance" > 0: received ${maxDistance}`,
    );
  }
  let forward: CellMatches[];
  let backward: CellMatches[];
  if (matching === "location") {
    if (grid === undefined) {
      throw new TypeError(
        `Expected local loss option "grid" ({h, w}) for matching "location"`,
      );
    }
    checkGridSize(grid, "grid", l);
    checkGridSize(grid2!, "grid2", l2);
    const g1 = checkGeometries(geometry1, "geometry1", n);
    const g2 = checkGeometries(geometry2, "geometry2", n);
    const o12 = { grid, grid2, topK, maxDistance };
    const o21 = { grid: grid2!, grid2: grid, topK, maxDistance };
    forward = g1.map((g, k) => matchByLocation(g, g2[k], o12));
    backward = g2.map((g, k) => matchByLocation(g, g1[k], o21));
  } else if (matching === "feature") {
    if (maxDistance === Infinity) {
      return featureLossOnDevice(z1, z2, topK, vicregOptions);
    }
    const o = { topK, maxDistance };
    const [d12, d21] = featureDistances(z1, z2);
    const per = l * l2; // distances of one image: [L1, L2] or [L2, L1]
    forward = Array.from(
      { length: n },
      (_, k) => nearestMatches(d12.subarray(k * per, (k + 1) * per), l2, o),
    );
    backward = Array.from(
      { length: n },
      (_, k) => nearestMatches(d21.subarray(k * per, (k + 1) * per), l, o),
    );
  } else {
    throw new RangeError(
      `Expected local loss option "matching" to be "index", "location" or "feature": received ${
        JSON.stringify(matching)
      }`,
    );
  }
  const rows12 = matchedRows(forward, l, l2, "z1 → z2");
  const rows21 = matchedRows(backward, l2, l, "z2 → z1");
  return tf.tidy(() => bothWays(z1, z2, () => [rows12, rows21], vicregOptions));
}

/** Source and target rows of the flattened `[N·L, D]` batches. */
type Rows = [Int32Array, Int32Array] | [tf.Tensor1D, tf.Tensor1D];

/**
 * The mean of the two directions' VICReg terms, z1's matched cells against
 * z2's and z2's against z1's. Call inside `tf.tidy`.
 */
function bothWays(
  z1: tf.Tensor3D,
  z2: tf.Tensor3D,
  rows: () => [Rows, Rows],
  options: VicregOptions,
): VicregTerms {
  const [n, l1, d] = z1.shape;
  const l2 = z2.shape[1];
  // z1: [N, L1, D] -> [N·L1, D]; z2: [N, L2, D] -> [N·L2, D]
  const flat1 = tf.reshape(z1, [n * l1, d]) as tf.Tensor2D;
  const flat2 = tf.reshape(z2, [n * l2, d]) as tf.Tensor2D;
  const [rows12, rows21] = rows();
  const a = pairedLoss(flat1, flat2, rows12, options);
  const b = pairedLoss(flat2, flat1, rows21, options);
  const mean = (p: tf.Scalar, q: tf.Scalar) =>
    tf.mul(tf.add(p, q), 0.5) as tf.Scalar;
  return {
    loss: mean(a.loss, b.loss),
    invariance: mean(a.invariance, b.invariance),
    variance: mean(a.variance, b.variance),
    covariance: mean(a.covariance, b.covariance),
  };
}

/**
 * Feature matching with every distance kept (`maxDistance` = ∞), done on the
 * device: `argMin` gives each cell's nearest neighbour and `topk` the `topK`
 * closest pairs per image, so nothing is read back in the middle of a step
 * (a read that Deno's WebGPU cannot do synchronously). The same pairs as
 * {@linkcode nearestMatches}, up to ties between equal distances.
 */
function featureLossOnDevice(
  z1: tf.Tensor3D,
  z2: tf.Tensor3D,
  topK: number,
  options: VicregOptions,
): VicregTerms {
  const n = z1.shape[0];
  const l1 = z1.shape[1];
  const l2 = z2.shape[1];
  const pairs = n * Math.min(topK, l1, l2);
  if (pairs < 2) {
    throw new RangeError(
      `Expected at least 2 matched cells for the local loss: received ${pairs}; raise "topK"`,
    );
  }
  return tf.tidy(() =>
    bothWays(z1, z2, () => {
      const [d12, d21] = featureDistanceTensors(z1, z2);
      // base[i] = i·L, the first row of image i in a view of L cells: [N, 1]
      const base = (l: number) =>
        tf.reshape(tf.range(0, n * l, l, "int32"), [n, 1]);
      // dist: [N, Ls, Lt], from the source view's Ls cells to the target's Lt
      const rowsOf = (dist: tf.Tensor3D): [tf.Tensor1D, tf.Tensor1D] => {
        const [, ls, lt] = dist.shape;
        const k = Math.min(topK, ls);
        const nearest = tf.reshape(tf.argMin(dist, 2), [-1]); // [N·Ls]
        const best = tf.min(dist, 2); // [N, Ls]
        const { indices } = tf.topk(tf.neg(best), k); // [N, k]
        // Rows of the flattened batch; a plain 1-D gather (wasm's gather with
        // batchDims reads out of bounds).
        const sources = tf.reshape(
          tf.add(indices, base(ls)),
          [-1],
        ) as tf.Tensor1D;
        const targets = tf.reshape(
          tf.add(tf.reshape(tf.gather(nearest, sources), [n, k]), base(lt)),
          [-1],
        ) as tf.Tensor1D;
        return [sources, targets];
      };
      return [rowsOf(d12), rowsOf(d21)];
    }, options)
  );
}

/**
 * Rows of the flattened `[N·Ls, D]` source and `[N·Lt, D]` target batches
 * paired by `matches`.
 */
function matchedRows(
  matches: CellMatches[],
  ls: number,
  lt: number,
  direction: string,
): [Int32Array, Int32Array] {
  const rowsS: number[] = [];
  const rowsT: number[] = [];
  matches.forEach((m, k) => {
    for (let i = 0; i < m.source.length; i++) {
      rowsS.push(k * ls + m.source[i]);
      rowsT.push(k * lt + m.target[i]);
    }
  });
  if (rowsS.length < 2) {
    throw new RangeError(
      `Expected at least 2 matched cells for the local loss (${direction}): received ${rowsS.length}; raise "maxDistance" or "topK"`,
    );
  }
  return [Int32Array.from(rowsS), Int32Array.from(rowsT)];
}

/** VICReg between source rows and their matched target rows, `[M, D]`. */
function pairedLoss(
  source: tf.Tensor2D,
  target: tf.Tensor2D,
  [rowsS, rowsT]: Rows,
  options: VicregOptions,
): VicregTerms {
  // [N·L, D] -> [M, D]
  return vicregLoss(
    gatherRows(source, rowsS),
    gatherRows(target, rowsT),
    options,
  );
}

/**
 * Euclidean distances between the cells of each image, both ways:
 * `[N, L1, L2]` row-major and its per-image transpose `[N, L2, L1]`, read
 * back to the CPU.
 */
function featureDistances(
  z1: tf.Tensor3D,
  z2: tf.Tensor3D,
): [Float32Array, Float32Array] {
  const [d12, d21] = featureDistanceTensors(z1, z2);
  const out: [Float32Array, Float32Array] = [
    d12.dataSync() as Float32Array,
    d21.dataSync() as Float32Array,
  ];
  tf.dispose([d12, d21]);
  return out;
}

/** The distances of {@linkcode featureDistances}, as `[N, L, L]` tensors. */
function featureDistanceTensors(
  z1: tf.Tensor3D,
  z2: tf.Tensor3D,
): [tf.Tensor3D, tf.Tensor3D] {
  return tf.tidy(() => {
    // ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b; z1: [N, L1, D], z2: [N, L2, D] ->
    // [N, L1, L2]. Only the indices leave this function, so no gradient
    // flows through it.
    const a = z1;
    const b = z2;
    const sa = tf.sum(tf.square(a), 2, true); // [N, L1, 1]
    const sb = tf.transpose(tf.sum(tf.square(b), 2, true), [0, 2, 1]); // [N, 1, L2]
    const cross = tf.matMul(a, b, false, true); // [N, L1, L2]
    const sq = tf.relu(tf.sub(tf.add(sa, sb), tf.mul(cross, 2)));
    const dist = tf.sqrt(sq);
    return [dist, tf.transpose(dist, [0, 2, 1])] as [tf.Tensor3D, tf.Tensor3D];
  });
}

function checkDescriptors(t: tf.Tensor, name: string): void {
  if (!(t instanceof tf.Tensor)) {
    throw new TypeError(`Expected "${name}" to be a tensor: received ${t}`);
  }
  if (t.rank !== 3) {
    throw new TypeError(
      `Expected "${name}" of rank 3 ([N, L, D]): received rank ${t.rank} (shape [${t.shape}])`,
    );
  }
  if (t.dtype !== "float32") {
    throw new TypeError(
      `Expected "${name}" of dtype float32: received ${t.dtype}`,
    );
  }
}

function checkTopK(topK: number): void {
  if (!Number.isInteger(topK) || topK < 1) {
    throw new RangeError(
      `Expected local loss option "topK" to be an integer >= 1: received ${topK}`,
    );
  }
}

function checkGridSize(grid: GridSize, name: string, l: number): void {
  checkGrid(grid, name);
  if (grid.h * grid.w !== l) {
    throw new TypeError(
      `Expected local loss option "${name}" with h·w = L = ${l}: received ${grid.h}×${grid.w}`,
    );
  }
}

function checkGrid(grid: GridSize, name: string): void {
  for (const key of ["h", "w"] as const) {
    if (!Number.isInteger(grid[key]) || grid[key] < 1) {
      throw new RangeError(
        `Expected "${name}.${key}" to be an integer >= 1: received ${
          grid[key]
        }`,
      );
    }
  }
}

function checkGeometry(g: ViewGeometry, name: string): void {
  const box = g?.box;
  if (!Array.isArray(box) || box.length !== 4) {
    throw new TypeError(
      `Expected "${name}.box" to be [x0, y0, x1, y1]: received ${
        JSON.stringify(box)
      }`,
    );
  }
  const [x0, y0, x1, y1] = box;
  if (!(x1 > x0) || !(y1 > y0)) {
    throw new RangeError(
      `Expected "${name}.box" with x0 < x1 and y0 < y1: received [${box}]`,
    );
  }
}

function checkGeometries(
  g: readonly ViewGeometry[] | undefined,
  name: string,
  n: number,
): readonly ViewGeometry[] {
  if (g === undefined || g.length !== n) {
    throw new TypeError(
      `Expected local loss option "${name}" with one ViewGeometry per sample (${n}) for matching "location": received ${
        g === undefined ? "none" : g.length
      }`,
    );
  }
  g.forEach((x, k) => checkGeometry(x, `${name}[${k}]`));
  return g;
}
