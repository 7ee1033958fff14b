/**
 * All-reducing many small arrays (one per parameter tensor) in a few large
 * calls: the arrays are packed, in order, into buckets of at most
 * `bucketBytes`, each bucket is summed over the ranks in one `allReduce`,
 * and the sums are copied back, as PyTorch's DistributedDataParallel
 * buckets its gradients.
 *
 * @module
 */
import type { Communicator } from "./communicator.ts";

/** Options of {@linkcode allReduceInBuckets}. */
export interface BucketOptions {
  /**
   * The most bytes one `allReduce` carries; an array larger than this goes
   * alone, without a copy. PyTorch DDP's default `bucket_cap_mb` is 25.
   * @default {25 * 2 ** 20}
   */
  bucketBytes?: number;
}

/** The defaults of {@linkcode BucketOptions}. */
export const DEFAULT_BUCKET_OPTIONS: { bucketBytes: number } = {
  bucketBytes: 25 * 2 ** 20,
};

/**
 * Sums each of `arrays` element-wise over the ranks, in place, in buckets.
 * Every rank passes arrays of the same lengths in the same order.
 *
 * @example
 * ```ts
 * import { SingleCommunicator } from "@scaling-vicreg/distributed/communicator";
 * import { allReduceInBuckets } from "@scaling-vicreg/distributed/bucket-all-reduce";
 * const grads = [new Float32Array([1, 2]), new Float32Array([3])];
 * const calls = await allReduceInBuckets(new SingleCommunicator(), grads);
 * console.log(calls, grads); // 1 [[1, 2], [3]]
 * ```
 *
 * @param comm The communicator.
 * @param arrays The arrays, overwritten with their sums.
 * @param options The bucket size.
 * @returns The number of `allReduce` calls made.
 * @throws {RangeError} `bucketBytes` is not a positive integer.
 */
export async function allReduceInBuckets(
  comm: Communicator,
  arrays: readonly Float32Array[],
  options: BucketOptions = {},
): Promise<number> {
  const { bucketBytes } = { ...DEFAULT_BUCKET_OPTIONS, ...options };
  if (!Number.isInteger(bucketBytes) || bucketBytes < 4) {
    throw new RangeError(
      `bucketBytes must be an integer ≥ 4: received ${bucketBytes}`,
    );
  }
  const capacity = Math.floor(bucketBytes / 4);
  let scratch: Float32Array | undefined;
  let calls = 0;
  let i = 0;
  while (i < arrays.length) {
    if (arrays[i].length === 0) {
      i++;
      continue;
    }
    if (arrays[i].length >= capacity) {
      await comm.allReduce(arrays[i]);
      calls++;
      i++;
      continue;
    }
    // arrays[i, j) fit in one bucket of `filled` floats.
    let j = i;
    let filled = 0;
    while (
      j < arrays.length && arrays[j].length < capacity &&
      filled + arrays[j].length <= capacity
    ) {
      filled += arrays[j].length;
      j++;
    }
    if (j === i + 1) {
      await comm.allReduce(arrays[i]);
    } else {
      scratch ??= new Float32Array(capacity);
      const bucket = scratch.subarray(0, filled);
      let at = 0;
      for (let k = i; k < j; k++) {
        bucket.set(arrays[k], at);
        at += arrays[k].length;
      }
      await comm.allReduce(bucket);
      at = 0;
      for (let k = i; k < j; k++) {
        arrays[k].set(bucket.subarray(at, at + arrays[k].length));
        at += arrays[k].length;
      }
    }
    calls++;
    i = j;
  }
  return calls;
}
