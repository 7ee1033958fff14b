/**
 * The batch loader: a seeded shuffle per epoch, fixed-size batches, and a
 * bounded prefetch queue so reading and decoding overlap the training step.
 *
 * The order of epoch `e` is a function of `(seed, e)` alone, so a run resumed
 * at `(epoch, batch)` sees exactly the batches it would have seen. The loader
 * asks the source for images ahead of time; where they are decoded is the
 * source's business: a data set opened with `openDataset(spec, { workers })`
 * decodes in Deno workers (a `DecodePool`), so prefetching overlaps the
 * training step; with `workers: 0` decoding (imagescript's WASM, synchronous
 * once started) runs on the main thread between steps.
 *
 * @module
 */
import { Rng } from "@scaling-vicreg/backend/random";
import type { RgbImage } from "@scaling-vicreg/backend/image";
import type { ImageSource } from "./source.ts";

/** One batch of images, with their labels and source indices. */
export interface Batch {
  /** The images, `batchSize` of them (fewer only for a last partial batch). */
  images: RgbImage[];
  /** `[N]` labels, or `undefined` for an unlabeled source. */
  labels: Int32Array | undefined;
  /** `[N]` source indices of the images. */
  indices: number[];
  /** The epoch. */
  epoch: number;
  /** The batch's index within the epoch. */
  index: number;
  /**
   * Row of the first image within the whole batch: 0, or with a `shard`,
   * where this process's share starts.
   */
  offset: number;
}

/** Options of {@linkcode Loader}. */
export interface LoaderOptions {
  /** Images per batch (≥ 1). */
  batchSize: number;
  /**
   * Shuffle each epoch (else source order).
   * @default {true}
   */
  shuffle?: boolean;
  /**
   * Seed of the per-epoch order.
   * @default {0}
   */
  seed?: number;
  /**
   * Drop the last, partial batch of an epoch.
   * @default {true}
   */
  dropLast?: boolean;
  /**
   * Batches loaded ahead of the one being consumed (0 = none).
   * @default {2}
   */
  prefetch?: number;
  /**
   * Load only this process's share of each batch: of a batch of n images,
   * rows `⌊n·rank/size⌋ … ⌊n·(rank+1)/size⌋ − 1` (data-parallel training,
   * where the shards of all ranks make up the batch a single process sees).
   * @default {{ rank: 0, size: 1 }}
   */
  shard?: { rank: number; size: number };
}

/** Defaults of {@linkcode LoaderOptions}. */
export const DEFAULT_LOADER_OPTIONS: Readonly<
  Required<Omit<LoaderOptions, "batchSize">>
> = Object
  .freeze({
    shuffle: true,
    seed: 0,
    dropLast: true,
    prefetch: 2,
    shard: { rank: 0, size: 1 },
  });

/**
 * Loads batches of images from an {@linkcode ImageSource} in a seeded order.
 *
 * @example
 * ```ts
 * import { Loader, proceduralDataset } from "@scaling-vicreg/data";
 * const loader = new Loader(proceduralDataset({ n: 10, size: 16 }), { batchSize: 4, seed: 1 });
 * for await (const batch of loader.batches(0)) {
 *   console.log(batch.index, batch.images.length, batch.labels?.length); // 0 4 4, then 1 4 4
 * }
 * ```
 */
export class Loader {
  /** Full batches per epoch (plus one partial batch when `dropLast` is false). */
  readonly batchesPerEpoch: number;
  #source: ImageSource;
  #options: Required<LoaderOptions>;

  /**
   * Makes a loader.
   *
   * @param source The images.
   * @param options Batch size, shuffle, seed, dropLast, prefetch, shard.
   */
  constructor(source: ImageSource, options: LoaderOptions) {
    const o = { ...DEFAULT_LOADER_OPTIONS, ...options };
    const { rank, size } = o.shard;
    if (
      !Number.isInteger(size) || size < 1 || !Number.isInteger(rank) ||
      rank < 0 || rank >= size
    ) {
      throw new RangeError(
        `Expected loader option "shard" to be { rank, size } with 0 ≤ rank < size: received ${
          JSON.stringify(o.shard)
        }`,
      );
    }
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) {
      throw new RangeError(
        `Expected loader option "batchSize" to be a positive integer: received ${o.batchSize}`,
      );
    }
    if (!Number.isInteger(o.prefetch) || o.prefetch < 0) {
      throw new RangeError(
        `Expected loader option "prefetch" to be a non-negative integer: received ${o.prefetch}`,
      );
    }
    if (o.dropLast && source.length < o.batchSize) {
      throw new RangeError(
        `Expected at least batchSize (${o.batchSize}) images with dropLast: ${source.describe()} has ${source.length}`,
      );
    }
    this.#source = source;
    this.#options = o;
    this.batchesPerEpoch = o.dropLast
      ? Math.floor(source.length / o.batchSize)
      : Math.ceil(source.length / o.batchSize);
  }

  /**
   * The order of source indices in `epoch`: a permutation drawn from
   * `Rng(seed).fork("epoch:<epoch>")`, or `0 … n−1` without shuffling.
   *
   * @param epoch The epoch (≥ 0).
   * @returns `[n]` indices.
   */
  order(epoch: number): number[] {
    if (!Number.isInteger(epoch) || epoch < 0) {
      throw new RangeError(
        `Expected a non-negative integer epoch: received ${epoch}`,
      );
    }
    const n = this.#source.length;
    if (!this.#options.shuffle) return Array.from({ length: n }, (_, i) => i);
    return new Rng(this.#options.seed).fork(`epoch:${epoch}`).permutation(n);
  }

  /**
   * The batches of `epoch` from batch `startBatch` on, each loaded while up
   * to `prefetch` later ones load in the background (at most `prefetch + 1`
   * batches are held by the loader at any time).
   *
   * @param epoch The epoch (≥ 0).
   * @param startBatch The first batch to yield, for resuming. @default {0}
   * @returns An async iterator of batches.
   */
  async *batches(epoch: number, startBatch = 0): AsyncIterableIterator<Batch> {
    if (
      !Number.isInteger(startBatch) || startBatch < 0 ||
      startBatch > this.batchesPerEpoch
    ) {
      throw new RangeError(
        `Expected startBatch in [0, ${this.batchesPerEpoch}]: received ${startBatch}`,
      );
    }
    const order = this.order(epoch);
    const { batchSize, prefetch, shard } = this.#options;
    const load = (b: number): Promise<Batch> => {
      const all = order.slice(b * batchSize, (b + 1) * batchSize);
      const from = Math.floor(all.length * shard.rank / shard.size);
      const to = Math.floor(all.length * (shard.rank + 1) / shard.size);
      const promise = this.#loadBatch(all.slice(from, to), epoch, b, from);
      // Rejections surface when the batch is awaited; this keeps a batch that
      // fails while queued from being reported as unhandled.
      promise.catch(() => {});
      return promise;
    };
    const queue: Promise<Batch>[] = [];
    let next = startBatch;
    while (next < this.batchesPerEpoch && queue.length < prefetch + 1) {
      queue.push(load(next++));
    }
    while (queue.length > 0) {
      const batch = await queue.shift()!;
      yield batch;
      // Refill only once the consumer is back, so it never holds one batch
      // while more than `prefetch` others load.
      if (next < this.batchesPerEpoch) queue.push(load(next++));
    }
  }

  async #loadBatch(
    indices: number[],
    epoch: number,
    index: number,
    offset: number,
  ): Promise<Batch> {
    const source = this.#source;
    const images = await Promise.all(indices.map((i) => source.get(i)));
    let labels: Int32Array | undefined = new Int32Array(indices.length);
    for (let k = 0; k < indices.length; k++) {
      const label = source.label(indices[k]);
      if (label === undefined) {
        labels = undefined;
        break;
      }
      labels[k] = label;
    }
    return { images, labels, indices, epoch, index, offset };
  }
}
