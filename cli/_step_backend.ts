/**
 * The backend a pretraining runs on.
 *
 * @module
 */
import {
  type BackendInfo,
  type MemoryBudget,
  memoryBudgetOf,
  useBackend,
  usesWasmHeap,
} from "@scaling-vicreg/backend";
import {
  BATCH_NORM_FLOOR,
  createVicregModel,
  type PretrainConfig,
  stepPlannerOf,
} from "@scaling-vicreg/train";
import { rankBatchOf } from "@scaling-vicreg/train/config";

/** Where `auto` moves a step that the wasm heap slices too thinly. */
const OUTSIDE_THE_HEAP = "native";

/**
 * Starts the run's backend: `config.backend`, where `auto` is the fastest
 * one that works (`useBackend`), with one exception. When that one keeps its
 * tensors in the 4 GiB wasm heap (`blas`) and the heap would cut each step
 * into slices below `BATCH_NORM_FLOOR` images (BatchNorm's statistics over
 * fewer images than one GPU of a data-parallel run sees), while half the
 * machine's memory gives `native` slices of at least that many, the run
 * takes `native`; so does a step (a `micro-batch` set or not) that only
 * `native`'s memory holds at all. A set `micro-batch` the heap holds stays
 * on it. The paper preset's step on the 2-core EPYC: slices of 2 and 14 min
 * 33 s on `blas`, slices of 64 and 7 min 33 s on `native`.
 *
 * @param config The configuration.
 * @param ranks The processes sharing the batch.
 * @returns The active backend, and why.
 */
export async function useStepBackend(
  config: PretrainConfig,
  ranks: number,
): Promise<BackendInfo> {
  const picked = await useBackend(config.backend);
  if (config.backend !== "auto" || !usesWasmHeap(picked.name)) return picked;
  const floor = Math.min(BATCH_NORM_FLOOR, rankBatchOf(config, ranks));
  const model = createVicregModel(config);
  let heap: number | undefined;
  let outside: number | undefined;
  try {
    // Images per slice in each memory; undefined where no plan fits.
    const plan = await stepPlannerOf(config, model, ranks);
    const slices = (budget: MemoryBudget) => {
      try {
        return plan(budget).microBatch;
      } catch {
        return undefined;
      }
    };
    heap = slices(memoryBudgetOf());
    // A set micro-batch moves only where the heap cannot hold it at all.
    const set = config.microBatch !== "auto";
    if (heap !== undefined && (heap >= floor || set)) return picked;
    outside = slices(memoryBudgetOf(OUTSIDE_THE_HEAP));
  } finally {
    model.dispose();
  }
  // Neither fits (the run's own planning says why), or both are thin.
  if (outside === undefined || (heap !== undefined && outside < floor)) {
    return picked;
  }
  try {
    const moved = await useBackend(OUTSIDE_THE_HEAP);
    const cut = heap === undefined
      ? "holds no plan for this step"
      : `cuts this step into slices of ${heap} images`;
    return {
      ...moved,
      reason:
        `${picked.name} is fastest here, but its wasm heap ${cut}; ${OUTSIDE_THE_HEAP}'s memory takes slices of ${outside}`,
    };
  } catch {
    await useBackend(picked.name);
    return picked;
  }
}
