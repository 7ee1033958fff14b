/**
 * The gradients of one VICReg step: the loss of the whole batch
 * ({@linkcode VicregModel.loss}) and d(loss)/d(parameter), computed jointly
 * or with less memory — view by view, and in micro-batches whose loss still
 * sees the whole batch. Every strategy gives the same update up to float
 * rounding (with micro-batches, BatchNorm sees one slice at a time).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { leanTape, readsSynchronously } from "@scaling-vicreg/backend";
import type { ViewGeometry } from "@scaling-vicreg/losses";
import type { CheckpointedForward } from "@scaling-vicreg/models";
import type { Projections, VicregLoss, VicregModel } from "./vicreg_model.ts";
import type { Communicator } from "@scaling-vicreg/distributed/communicator";
import { allReduceInBuckets } from "@scaling-vicreg/distributed/bucket-all-reduce";

/**
 * How a slice of the batch back-propagates, from fastest and largest to
 * slowest and smallest: `joint` (one tape over both views), `mixed` (view 1
 * recomputed block by block, view 2 on one tape: one more forward pass of
 * one view, about half the memory), `view-by-view` (both views recomputed
 * block by block: one more forward pass of each view, one residual block's
 * activations at a time).
 */
export type StepMode = "joint" | "mixed" | "view-by-view";

/** Options of {@linkcode stepGradients}. */
export interface StepOptions {
  /** How each slice back-propagates; see {@linkcode StepMode}. @default {"joint"} */
  mode?: StepMode;
  /**
   * Images per slice, M ≥ 2. The batch B is processed in ⌈B/M⌉ slices (the
   * last one smaller when M does not divide B; one of a single image joins
   * the slice before); `B` or more is one slice.
   * @default {Infinity}
   */
  microBatch?: number;
  /**
   * With micro-batches in `joint` mode, how many of the last slices keep
   * their activations on the loss's tape instead of being embedded without
   * one and re-run: each kept slice saves a forward pass of its images and
   * holds its activations until the loss is back-propagated. One slice (the
   * default) costs no memory beyond what re-running a slice takes; all of
   * them is one tape over the batch, BatchNorm still per slice. Other modes
   * re-run every slice.
   * @default {1}
   */
  keptSlices?: number;
  /**
   * Each view's crop boxes and flips (length B each), for the local loss's
   * `location` matching.
   */
  geometry?: [readonly ViewGeometry[], readonly ViewGeometry[]];
  /**
   * With micro-batches, called after each slice of each pass (the embedding
   * pass, then the back-propagating one): `done` of `total` slice passes,
   * twice the slices (kept slices count as back-propagated when the loss's
   * tape is).
   */
  onSlice?: (done: number, total: number) => void;
}

/** The defaults of {@linkcode StepOptions}' `mode` and `microBatch`. */
export const DEFAULT_STEP_OPTIONS: Readonly<
  Required<Omit<StepOptions, "geometry" | "onSlice">>
> = Object.freeze({ mode: "joint", microBatch: Infinity, keptSlices: 1 });

/** What {@linkcode stepGradients} returns; the caller disposes every tensor. */
export interface StepGradients {
  /** The loss of the whole batch and its terms. */
  loss: VicregLoss;
  /** d(total)/d(parameter) by {@linkcode VicregModel.parameters} name. */
  grads: Map<string, tf.Tensor>;
}

/** A function of both views' projections whose gradient is wanted. */
type Head = (p1: Projections, p2: Projections) => tf.Scalar;

/**
 * The loss of a step on two views `[B, H, W, 3]` and its gradient with
 * respect to every parameter of the model.
 *
 * One slice (`microBatch ≥ B`): the model's loss on a tape, run as `mode`
 * says. The running statistics move once per view, view 1 first.
 *
 * Micro-batches (`microBatch` = M < B, the "gradient cache"): (1) embed the
 * slices of both views without a tape, which updates the running statistics
 * once per slice and view; (2) on one tape, embed the last `keptSlices`
 * slices (in `joint` mode; none in the others), concatenate all projections
 * to `[B, D]` (and `[B, h·w, d]`), compute the loss of the whole batch
 * exactly as one slice would, and back-propagate it to the parameters
 * (through the kept slices) and to the projections of step (1); (3) re-run
 * each slice of step (1) with a tape (running statistics frozen) and
 * back-propagate its rows of that gradient, summing the parameter gradients
 * over slices. The loss, and so its variance and covariance terms, sees all
 * B rows; BatchNorm normalises each slice with its own statistics, as each
 * GPU does in data-parallel training without SyncBatchNorm. One more
 * forward pass of both views of every slice but the kept ones.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { createVicregModel, resolveConfig, stepGradients } from "@scaling-vicreg/train";
 * await useBackend("cpu");
 * const config = resolveConfig({ flags: { preset: "tiny", mlp: "32-32", "use-local-loss": false } });
 * const model = createVicregModel(config);
 * const views: [tf.Tensor4D, tf.Tensor4D] = [
 *   tf.randomNormal([8, 16, 16, 3]),
 *   tf.randomNormal([8, 16, 16, 3]),
 * ];
 * const { loss, grads } = stepGradients(model, views, { microBatch: 4 });
 * console.log((await loss.total.data())[0], grads.size);
 * tf.dispose([views, loss, [...grads.values()]]);
 * model.dispose();
 * ```
 *
 * @param model The model.
 * @param views The two views `[B, H, W, 3]`.
 * @param options The views' geometry (for `location` matching), `mode` and `microBatch`; see {@linkcode StepOptions}.
 * @returns The loss and the gradients (the caller disposes both).
 */
export function stepGradients(
  model: VicregModel,
  views: [tf.Tensor4D, tf.Tensor4D],
  options: StepOptions = {},
): StepGradients {
  const { mode, microBatch, keptSlices } = resolveStepOptions(options);
  const geometry = options.geometry;
  const [b] = views[0].shape;
  if (microBatch >= b) {
    let terms: VicregLoss["terms"] | undefined;
    const { value, grads } = sliceGradients(
      model,
      views,
      mode,
      true,
      (p1, p2) => {
        const loss = model.criterion(p1, p2, geometry);
        for (const t of Object.values(loss.terms)) tf.keep(t);
        terms = loss.terms;
        return loss.total;
      },
    );
    return { loss: { total: value, terms: terms! }, grads };
  }
  const slices = sliceRanges(b, microBatch);
  const kept = mode === "joint" ? Math.min(keptSlices, slices.length) : 0;
  const rerun = slices.slice(0, slices.length - kept);
  const tick = ticker(2 * slices.length, options.onSlice);
  // (1) The slices to re-run, embedded without a tape.
  const early = embedSlices(model, views, rerun, tick);
  // (2) The kept slices embedded on a tape, the loss of the whole batch,
  // and d(loss)/d(parameters) through the kept slices, d(loss)/d(early
  // projections) for the others.
  const { loss, upstream, grads } = lossOnTape(
    model,
    views,
    slices.slice(rerun.length),
    early,
    geometry,
    tick,
  );
  // (3) Each re-run slice back-propagates its rows of that gradient.
  backpropagateSlices(model, views, rerun, mode, upstream, 0, tick, grads);
  tf.dispose(upstream as unknown as tf.TensorContainer);
  return { loss, grads };
}

/**
 * {@linkcode stepGradients} of a global batch spread over the ranks of a
 * communicator: each rank holds a shard of the views (its rows of the
 * global batch, in rank order) and embeds it in slices of `microBatch`
 * without a tape; the projections (and the views' geometry) are
 * all-gathered, so every rank computes the loss of the whole global batch
 * and its gradient w.r.t. the projections (as facebookresearch/vicreg's
 * `FullGatherLayer` makes every GPU see every row); each rank back-propagates
 * its own rows slice by slice, and the parameter gradients are all-reduced
 * (summed, in buckets). Every rank returns the same loss and gradients:
 * those of one process running the global batch in slices of the shards
 * (BatchNorm normalises each rank's slices with their own statistics).
 *
 * @param model The model (the same weights on every rank).
 * @param views This rank's two views `[b, H, W, 3]`.
 * @param comm The communicator.
 * @param options `mode`, `microBatch` and this rank's `geometry`; see {@linkcode StepOptions}.
 * @returns The loss of the global batch and the summed gradients.
 */
export async function distributedStepGradients(
  model: VicregModel,
  views: [tf.Tensor4D, tf.Tensor4D],
  comm: Communicator,
  options: StepOptions = {},
): Promise<StepGradients> {
  const { mode, microBatch } = resolveStepOptions(options);
  const [b] = views[0].shape;
  const counts = await comm.allGather(new Float64Array([b]));
  const offset = counts.slice(0, comm.rank).reduce((a, n) => a + n, 0);
  const geometry = options.geometry &&
    await gatherGeometry(comm, options.geometry);
  // The one-tape path reads the projections back synchronously, which
  // WebGPU cannot: there the shard takes the gradient cache.
  if (
    microBatch >= b && mode === "joint" && readsSynchronously()
  ) {
    return await allReduceGradients(
      comm,
      gatheredOnTape(model, views, comm, offset, geometry),
    );
  }
  const slices = sliceRanges(b, Math.min(microBatch, b));
  const tick = ticker(2 * slices.length, options.onSlice);
  const mine = embedSlices(model, views, slices, tick);
  const whole: [Projections, Projections] = [
    await gatherProjections(comm, mine![0]),
    await gatherProjections(comm, mine![1]),
  ];
  tf.dispose(mine as unknown as tf.TensorContainer);
  const { loss, upstream } = lossOnTape(
    model,
    undefined,
    [],
    whole,
    geometry,
    tick,
  );
  const grads = backpropagateSlices(
    model,
    views,
    slices,
    mode,
    upstream,
    offset,
    tick,
  );
  tf.dispose(upstream as unknown as tf.TensorContainer);
  return await allReduceGradients(comm, { loss, grads });
}

/**
 * One rank's shard on one tape, with no recomputation: both views embedded,
 * their projections all-gathered inside the tape by a blocking collective
 * (its gradient is this rank's rows of the upstream one), the loss of the
 * whole batch, back-propagated to this rank's parameters.
 */
function gatheredOnTape(
  model: VicregModel,
  views: [tf.Tensor4D, tf.Tensor4D],
  comm: Communicator,
  offset: number,
  geometry: StepOptions["geometry"],
): StepGradients {
  const [b] = views[0].shape;
  // x: [b, …] -> every rank's rows [B, …]; d/dx: this rank's rows of dy.
  const gather = tf.customGrad(
    ((x: tf.Tensor, save: tf.GradSaveFunc) => {
      save([]);
      const rows = comm.allGatherBlocking(new Float32Array(x.dataSync()));
      const width = x.size / b;
      return {
        value: tf.tensor(rows, [rows.length / width, ...x.shape.slice(1)]),
        gradFunc: (dy: tf.Tensor) => tf.slice(dy, offset, b),
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0],
  ) as unknown as <
    T extends tf.Tensor,
  >(x: T) => T;
  let terms: VicregLoss["terms"] | undefined;
  const { value, grads } = sliceGradients(
    model,
    views,
    "joint",
    true,
    (p1, p2) => {
      const [w1, w2] = [p1, p2].map((p): Projections => ({
        z: gather(p.z),
        ...(p.local ? { local: gather(p.local), grid: p.grid } : {}),
      }));
      const loss = model.criterion(w1, w2, geometry);
      for (const t of Object.values(loss.terms)) tf.keep(t);
      terms = loss.terms;
      return loss.total;
    },
  );
  return { loss: { total: value, terms: terms! }, grads };
}

/**
 * Sums the gradients over the ranks (in buckets). Each gradient is copied
 * out of the backend (a wasm heap can move during a call) and freed there
 * as it is copied, so that the parameters' gradients are never there twice.
 */
async function allReduceGradients(
  comm: Communicator,
  { loss, grads }: StepGradients,
): Promise<StepGradients> {
  const shapes = new Map<string, number[]>();
  const host: Float32Array[] = [];
  for (const [k, g] of grads) {
    shapes.set(k, g.shape);
    host.push(new Float32Array(await g.data()));
    g.dispose();
  }
  await allReduceInBuckets(comm, host);
  const summed = new Map<string, tf.Tensor>();
  [...shapes].forEach(([k, shape], i) =>
    summed.set(k, tf.tensor(host[i], shape, "float32"))
  );
  return { loss, grads: summed };
}

/**
 * Both views' projections of the slices, concatenated: `[b, D]` (+
 * `[b, h·w, d]`), or `undefined` for no slices.
 */
function embedSlices(
  model: VicregModel,
  views: [tf.Tensor4D, tf.Tensor4D],
  slices: [number, number][],
  tick: () => void,
): [Projections, Projections] | undefined {
  if (slices.length === 0) return undefined;
  const parts = embedEach(model, views, slices, tick);
  const whole = [0, 1].map((v) => concatProjections(parts.map((p) => p[v])));
  tf.dispose(parts as unknown as tf.TensorContainer);
  return whole as [Projections, Projections];
}

/**
 * Both views of each slice embedded: `[slice][view]`. Per slice, view 1
 * then view 2: the running statistics move in that order.
 */
function embedEach(
  model: VicregModel,
  views: [tf.Tensor4D, tf.Tensor4D],
  slices: [number, number][],
  tick: () => void,
): Projections[][] {
  return slices.map((range) => {
    const part = views.map((view) =>
      tf.tidy(() =>
        model.embed(cut(view, range)) as unknown as tf.TensorContainer
      ) as unknown as Projections
    );
    tick();
    return part;
  });
}

/** d(loss)/d(projections) of both views: `[dz1, dl1, dz2, dl2]`. */
type Upstream = [
  [tf.Tensor, tf.Tensor | undefined],
  [tf.Tensor, tf.Tensor | undefined],
];

/** What {@linkcode lossOnTape} returns. */
interface TapeResult {
  /** The loss of the whole batch. */
  loss: VicregLoss;
  /** d(loss)/d(early projections), when there were early ones. */
  upstream: Upstream | undefined;
  /** d(loss)/d(parameter) through the kept slices (none without them). */
  grads: Map<string, tf.Tensor>;
}

/**
 * One tape: the `kept` slices of `views` embedded (running statistics
 * moving, per slice view 1 then view 2), after the `early` projections
 * (rows before them, already embedded), the loss of the whole batch, and
 * its gradient w.r.t. the parameters and the early projections, which it
 * disposes.
 */
function lossOnTape(
  model: VicregModel,
  views: [tf.Tensor4D, tf.Tensor4D] | undefined,
  kept: [number, number][],
  early: [Projections, Projections] | undefined,
  geometry: StepOptions["geometry"],
  tick: () => void,
): TapeResult {
  const params = kept.length > 0 ? [...model.parameters()] : [];
  const inputs = early?.flatMap((p) => p.local ? [p.z, p.local] : [p.z]) ??
    [];
  let terms: VicregLoss["terms"] | undefined;
  const { value, grads: all } = tf.engine().gradients(
    () =>
      leanTape(() => {
        const parts = embedEach(model, views!, kept, tick);
        // [b, D] of early rows, then each kept slice's rows -> [B, D]
        const [w1, w2] = [0, 1].map((v) =>
          concatProjections([
            ...(early === undefined ? [] : [early[v]]),
            ...parts.map((p) => p[v]),
          ])
        );
        const loss = model.criterion(w1, w2, geometry);
        for (const t of Object.values(loss.terms)) tf.keep(t);
        terms = loss.terms;
        return loss.total;
      }),
    [...params.map(([, v]) => v), ...inputs],
    undefined,
    true,
  );
  // The kept slices are back-propagated.
  kept.forEach(() => tick());
  tf.dispose(inputs);
  const grads = new Map(params.map(([name], i) => [name, all[i]]));
  const d = all.slice(params.length);
  const upstream: Upstream | undefined = early === undefined
    ? undefined
    : model.usesLocalLoss
    ? [[d[0], d[1]], [d[2], d[3]]]
    : [[d[0], undefined], [d[1], undefined]];
  return {
    loss: { total: value as tf.Scalar, terms: terms! },
    upstream,
    grads,
  };
}

/**
 * Re-runs each slice on a tape (running statistics frozen) and
 * back-propagates its rows of the upstream gradient; the parameter
 * gradients summed over slices. `offset`: the batch row of `views`' first
 * image in `upstream`.
 */
function backpropagateSlices(
  model: VicregModel,
  views: [tf.Tensor4D, tf.Tensor4D],
  slices: [number, number][],
  mode: StepMode,
  upstream: Upstream | undefined,
  offset: number,
  tick: () => void,
  grads: Map<string, tf.Tensor> = new Map(),
): Map<string, tf.Tensor> {
  for (const [start, size] of slices) {
    // [B, …] -> [M, …]: the slice's rows.
    const d = upstream!.map((pair) =>
      pair.map((g) => g && tf.slice(g, offset + start, size))
    );
    const sliceViews = views.map((x) => cut(x, [start, size])) as [
      tf.Tensor4D,
      tf.Tensor4D,
    ];
    // Σ z·dz (+ Σ local·dl) has gradient dz (and dl) w.r.t. the projections.
    const part = sliceGradients(
      model,
      sliceViews,
      mode,
      false,
      (p1, p2) =>
        tf.addN([p1, p2].flatMap((p, v) => {
          const [dz, dl] = d[v];
          const terms = [tf.sum(tf.mul(p.z, dz!))];
          if (dl !== undefined) terms.push(tf.sum(tf.mul(p.local!, dl)));
          return terms;
        })) as tf.Scalar,
    );
    tf.dispose([
      part.value,
      ...sliceViews,
      ...d.flat().filter((t) => t !== undefined),
    ]);
    accumulate(grads, part.grads);
    tick();
  }
  return grads;
}

/** Counts slice passes for `onSlice`, of `total`. */
function ticker(
  total: number,
  onSlice: StepOptions["onSlice"],
): () => void {
  let done = 0;
  return () => onSlice?.(++done, total);
}

/** Rows `[start, start + size)` of a batch of images. */
function cut(x: tf.Tensor4D, [start, size]: [number, number]): tf.Tensor4D {
  return tf.slice(x, [start, 0, 0, 0], [size, -1, -1, -1]) as tf.Tensor4D;
}

/** Every rank's projections, in rank order; disposes nothing. */
async function gatherProjections(
  comm: Communicator,
  p: Projections,
): Promise<Projections> {
  const gather = async <T extends tf.Tensor>(t: T): Promise<T> => {
    const rows = await comm.allGather(new Float32Array(await t.data()));
    const width = t.size / t.shape[0];
    return tf.tensor(rows, [rows.length / width, ...t.shape.slice(1)]) as T;
  };
  return {
    z: await gather(p.z),
    ...(p.local ? { local: await gather(p.local), grid: p.grid } : {}),
  };
}

/** Every rank's view geometry, in rank order. */
async function gatherGeometry(
  comm: Communicator,
  geometry: NonNullable<StepOptions["geometry"]>,
): Promise<[ViewGeometry[], ViewGeometry[]]> {
  const gather = async (views: readonly ViewGeometry[]) => {
    // [x0, y0, x1, y1, flip] per image
    const flat = new Float64Array(views.flatMap((g) => [...g.box, +g.flip]));
    const all = await comm.allGather(flat);
    return Array.from({ length: all.length / 5 }, (_, i): ViewGeometry => ({
      box: [all[5 * i], all[5 * i + 1], all[5 * i + 2], all[5 * i + 3]],
      flip: all[5 * i + 4] === 1,
    }));
  };
  return [await gather(geometry[0]), await gather(geometry[1])];
}

/**
 * Resolves and checks {@linkcode StepOptions}.
 *
 * @param options The options.
 * @returns Every option, defaults filled in.
 */
export function resolveStepOptions(
  options: StepOptions = {},
): Required<Omit<StepOptions, "geometry" | "onSlice">> {
  const out = { ...DEFAULT_STEP_OPTIONS, ...withoutUndefined(options) };
  if (!["joint", "mixed", "view-by-view"].includes(out.mode)) {
    throw new RangeError(
      `Expected step option "mode" to be joint, mixed or view-by-view: received ${
        JSON.stringify(out.mode)
      }`,
    );
  }
  if (
    !(out.microBatch >= 2) ||
    (Number.isFinite(out.microBatch) && !Number.isInteger(out.microBatch))
  ) {
    throw new RangeError(
      `Expected step option "microBatch" to be an integer ≥ 2 (training-mode BatchNorm needs two images per slice): received ${out.microBatch}`,
    );
  }
  if (!(Number.isInteger(out.keptSlices) && out.keptSlices >= 0)) {
    throw new RangeError(
      `Expected step option "keptSlices" to be an integer ≥ 0: received ${out.keptSlices}`,
    );
  }
  return {
    mode: out.mode,
    microBatch: out.microBatch,
    keptSlices: out.keptSlices,
  };
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => v !== undefined),
  ) as Partial<T>;
}

/**
 * The slices `[start, size]` of a batch of `b` in slices of `m`, the last
 * one smaller when `m` does not divide `b`; a last slice of one image joins
 * the one before (training-mode BatchNorm needs two).
 *
 * @param b The batch size.
 * @param m Images per slice.
 * @returns The slices in order.
 */
export function sliceRanges(b: number, m: number): [number, number][] {
  const out: [number, number][] = [];
  for (let start = 0; start < b; start += m) {
    out.push([start, Math.min(m, b - start)]);
  }
  if (out.length > 1 && out.at(-1)![1] === 1) {
    out.pop();
    out.at(-1)![1] += 1;
  }
  return out;
}

function concatProjections(parts: Projections[]): Projections {
  return {
    z: tf.concat(parts.map((p) => p.z)) as tf.Tensor2D,
    ...(parts[0].local
      ? {
        local: tf.concat(parts.map((p) => p.local!)) as tf.Tensor3D,
        grid: parts[0].grid,
      }
      : {}),
  };
}

/** Adds each gradient of `part` into `sums`, disposing what it replaces. */
function accumulate(
  sums: Map<string, tf.Tensor>,
  part: Map<string, tf.Tensor>,
): void {
  for (const [name, g] of part) {
    const sum = sums.get(name);
    if (sum === undefined) {
      sums.set(name, g);
    } else {
      sums.set(name, tf.add(sum, g));
      tf.dispose([sum, g]);
    }
  }
}

/**
 * The head's value and d(head)/d(parameter) for one slice of both views,
 * back-propagated as `mode` says.
 */
function sliceGradients(
  model: VicregModel,
  views: [tf.Tensor4D, tf.Tensor4D],
  mode: StepMode,
  updateRunningStats: boolean,
  head: Head,
): { value: tf.Scalar; grads: Map<string, tf.Tensor> } {
  const params = model.parameters();
  const local = model.usesLocalLoss;
  const bn = { updateRunningStats };
  // A view without a tape: it keeps its residual blocks' inputs and its
  // outputs, which the heads then read.
  const checkpointed = (x: tf.Tensor4D) =>
    model.backbone.forwardCheckpointed(x, {
      ...model.batchNormOptions(bn),
      returnFeatureMap: local,
    });
  const outputsOf = (run: CheckpointedForward): tf.Tensor[] =>
    local ? [run.embedding, run.featureMap!] : [run.embedding];
  const grads = new Map<string, tf.Tensor>();
  // Back-propagates a checkpointed view with its upstream gradients (the
  // embedding's, then the feature map's) into the backbone's sums.
  const backpropagate = (run: CheckpointedForward, dy: tf.Tensor[]) => {
    const part = run.backward({
      embedding: dy[0] as tf.Tensor2D,
      featureMap: local ? dy[1] as tf.Tensor4D : undefined,
    });
    run.dispose();
    tf.dispose(dy);
    accumulate(
      grads,
      new Map([...part].map(([name, g]) => [`backbone.${name}`, g])),
    );
  };
  if (mode === "joint") {
    const names = [...params.keys()];
    const { value, grads: byId } = tf.variableGrads(
      () =>
        leanTape(() =>
          head(model.embed(views[0], bn), model.embed(views[1], bn))
        ),
      [...params.values()],
    );
    for (const name of names) grads.set(name, byId[params.get(name)!.name]);
    return { value, grads };
  }
  if (mode === "mixed") {
    const run = checkpointed(views[0]);
    const names = [...params.keys()];
    const { value, grads: all } = tf.engine().gradients(
      () =>
        leanTape(() => head(model.project(run, bn), model.embed(views[1], bn))),
      [...params.values(), ...outputsOf(run)],
      undefined,
      true,
    );
    names.forEach((name, i) => grads.set(name, all[i]));
    backpropagate(run, all.slice(names.length));
    return { value: value as tf.Scalar, grads };
  }
  const heads = [...params].filter(([name]) => !name.startsWith("backbone."));
  const runs = views.map(checkpointed);
  const { value, grads: headGrads } = tf.engine().gradients(
    () => head(model.project(runs[0], bn), model.project(runs[1], bn)),
    [...heads.map(([, v]) => v), ...runs.flatMap(outputsOf)],
    undefined,
    true,
  );
  heads.forEach(([name], i) => grads.set(name, headGrads[i]));
  const upstream = headGrads.slice(heads.length);
  const perView = local ? 2 : 1;
  runs.forEach((run, v) =>
    backpropagate(run, upstream.slice(v * perView, (v + 1) * perView))
  );
  return { value: value as tf.Scalar, grads };
}
