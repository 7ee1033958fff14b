/**
 * The step of a data-parallel run: each rank embeds its shard, the
 * projections are all-gathered so every rank computes the loss of the whole
 * global batch, each rank back-propagates its own rows, and the parameter
 * gradients are summed over the ranks.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { readsSynchronously } from "@scaling-vicreg/backend";
import type { ViewGeometry } from "@scaling-vicreg/losses";
import type { Communicator } from "@scaling-vicreg/distributed/communicator";
import { allReduceInBuckets } from "@scaling-vicreg/distributed/bucket-all-reduce";
import {
  resolveStepOptions,
  sliceRanges,
  type StepGradients,
  type StepOptions,
} from "./step_options.ts";
import {
  backpropagateSlices,
  criterionHead,
  embedSlices,
  type Geometry,
  lossOnTape,
  sliceGradients,
  ticker,
} from "./_step_slices.ts";
import type { Projections, VicregModel } from "./vicreg_model.ts";

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
 * @param views This rank's views `[b, H_v, W_v, 3]` (two, or multi-crop).
 * @param comm The communicator.
 * @param options `mode`, `microBatch` and this rank's `geometry`; see {@linkcode StepOptions}.
 * @returns The loss of the global batch and the summed gradients.
 */
export async function distributedStepGradients(
  model: VicregModel,
  views: readonly tf.Tensor4D[],
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
  const whole: Projections[] = [];
  for (const p of mine!) whole.push(await gatherProjections(comm, p));
  tf.dispose(mine as unknown as tf.TensorContainer);
  const { loss, upstream } = lossOnTape(
    model,
    undefined,
    [],
    whole,
    criterionHead(model, geometry),
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
  views: readonly tf.Tensor4D[],
  comm: Communicator,
  offset: number,
  geometry: Geometry | undefined,
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
  const criterion = criterionHead(model, geometry);
  const { value, grads } = sliceGradients(
    model,
    views,
    "joint",
    true,
    (p) => {
      const whole = p.map((v): Projections => ({
        z: gather(v.z),
        ...(v.local ? { local: gather(v.local), grid: v.grid } : {}),
      }));
      return criterion.head(whole);
    },
  );
  return { loss: criterion.loss(value), grads };
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
  geometry: Geometry,
): Promise<ViewGeometry[][]> {
  const gather = async (views: readonly ViewGeometry[]) => {
    // [x0, y0, x1, y1, flip] per image
    const flat = new Float64Array(views.flatMap((g) => [...g.box, +g.flip]));
    const all = await comm.allGather(flat);
    return Array.from({ length: all.length / 5 }, (_, i): ViewGeometry => ({
      box: [all[5 * i], all[5 * i + 1], all[5 * i + 2], all[5 * i + 3]],
      flip: all[5 * i + 4] === 1,
    }));
  };
  const out: ViewGeometry[][] = [];
  for (const g of geometry) out.push(await gather(g));
  return out;
}
