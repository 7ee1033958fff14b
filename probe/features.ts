/**
 * Feature extraction from any embedding function (plain or 10-crop TTA), and
 * an on-disk `.npy` feature cache keyed by a hash of what produced the
 * features, so a sweep never re-runs the backbone.
 *
 * @module
 */
import { sha256Hex, writeFileAtomic } from "@scaling-vicreg/backend/fs";
import * as tf from "@tensorflow/tfjs-core";
import { type NpyArray, readNpy, writeNpy } from "@scaling-vicreg/backend/npy";
import type { LabelledFeatures } from "./linear.ts";

/** The `.npy` array type the cache stores (from `@scaling-vicreg/backend/npy`). */
export type { NpyArray };

/** A row-major float32 matrix `[N, D]` of features, off the backend. */
export interface FeatureMatrix {
  /** Elements, row-major. */
  data: Float32Array;
  /** `[N, D]`. */
  shape: [number, number];
}

/** Options of {@linkcode extractFeatures}. */
export interface ExtractFeaturesOptions {
  /**
   * Crops per image: 1, or e.g. 10 for 10-crop TTA, where rows
   * n·crops … n·crops + crops − 1 of each batch are the crops of image n and
   * their embeddings are averaged.
   * @default {1}
   */
  crops?: number;
  /** Dispose each input batch once it is embedded. @default {true} */
  disposeInputs?: boolean;
}

/** The defaults of {@linkcode ExtractFeaturesOptions}. */
export const DEFAULT_EXTRACT_FEATURES_OPTIONS: Readonly<
  Required<ExtractFeaturesOptions>
> = Object.freeze({ crops: 1, disposeInputs: true });

/**
 * Embeds batches of images `[B, H, W, C]` (NHWC) with `embed` and gathers the
 * embeddings `[B, D]` into one matrix, off the backend, disposing as it goes.
 * With `crops` > 1 each batch holds whole groups of crops (B a multiple of
 * `crops`, the crops of one image consecutive) and each group's embeddings
 * are averaged: 10-crop test-time augmentation.
 *
 * `embed` is called inside `tf.tidy`; it should be a frozen model in eval
 * mode (e.g. the pooled backbone output).
 *
 * @param embed Images `[B, H, W, C]` → embeddings `[B, D]`.
 * @param inputs Batches (sync or async iterable); ownership passes here when
 * `disposeInputs` is set.
 * @param options See {@linkcode ExtractFeaturesOptions}.
 * @returns Features `[images, D]`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { extractFeatures } from "@scaling-vicreg/probe/features";
 * await useBackend("cpu");
 * const meanColour = (x: tf.Tensor4D) => tf.mean(x, [1, 2]) as tf.Tensor2D; // [B, C]
 * const batches = [tf.ones([4, 8, 8, 3]) as tf.Tensor4D];
 * const features = await extractFeatures(meanColour, batches);
 * // features.shape = [4, 3]
 * ```
 */
export async function extractFeatures(
  embed: (batch: tf.Tensor4D) => tf.Tensor2D,
  inputs: AsyncIterable<tf.Tensor4D> | Iterable<tf.Tensor4D>,
  options: ExtractFeaturesOptions = {},
): Promise<FeatureMatrix> {
  const o = { ...DEFAULT_EXTRACT_FEATURES_OPTIONS, ...options };
  if (!Number.isInteger(o.crops) || o.crops < 1) {
    throw new RangeError(
      `Expected crops to be a positive integer: received ${o.crops}`,
    );
  }
  const chunks: Float32Array[] = [];
  let rows = 0;
  let dim = -1;
  for await (const batch of inputs) {
    try {
      if (batch.rank !== 4) {
        throw new TypeError(
          `Expected input batches of rank 4 [B, H, W, C]: received rank ${batch.rank}`,
        );
      }
      const b = batch.shape[0];
      if (b % o.crops !== 0) {
        throw new TypeError(
          `Expected a batch size that is a multiple of crops (${o.crops}): received ${b}`,
        );
      }
      const pooled = tf.tidy(() => {
        const e = embed(batch);
        if (e.rank !== 2 || e.shape[0] !== b) {
          throw new TypeError(
            `Expected embed() to return [${b}, D]: received [${e.shape}]`,
          );
        }
        if (o.crops === 1) return tf.cast(e, "float32");
        // [B, D] -> [B/crops, crops, D] -> mean over crops -> [B/crops, D]
        const grouped = tf.reshape(e, [b / o.crops, o.crops, e.shape[1]]);
        return tf.mean(tf.cast(grouped, "float32"), 1);
      });
      try {
        if (dim >= 0 && pooled.shape[1] !== dim) {
          throw new TypeError(
            `Expected every batch to embed to width ${dim}: received ${
              pooled.shape[1]
            }`,
          );
        }
        dim = pooled.shape[1]!;
        chunks.push(await pooled.data() as Float32Array);
        rows += pooled.shape[0];
      } finally {
        pooled.dispose();
      }
    } finally {
      if (o.disposeInputs) batch.dispose();
    }
  }
  const data = new Float32Array(rows * Math.max(dim, 0));
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.length;
  }
  return { data, shape: [rows, Math.max(dim, 0)] };
}

/**
 * Wraps a feature matrix (or a 2-D float32 `.npy` array) and labels as
 * {@linkcode LabelledFeatures} on the active backend (dispose the features).
 *
 * @param matrix Features `[N, D]`.
 * @param labels Class indices, length N.
 * @returns The tensor and labels.
 *
 * @example
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { toLabelledFeatures } from "@scaling-vicreg/probe/features";
 * await useBackend("cpu");
 * const data = toLabelledFeatures(
 *   { data: Float32Array.of(1, 2, 3, 4), shape: [2, 2] },
 *   Int32Array.of(0, 1),
 * );
 * data.features.dispose();
 * ```
 */
export function toLabelledFeatures(
  matrix: FeatureMatrix | NpyArray,
  labels: Int32Array,
): LabelledFeatures {
  if (matrix.shape.length !== 2 || !(matrix.data instanceof Float32Array)) {
    throw new TypeError(
      `Expected float32 features of rank 2 [N, D]: received rank ${matrix.shape.length}, ${matrix.data.constructor.name}`,
    );
  }
  if (matrix.shape[0] !== labels.length) {
    throw new TypeError(
      `Expected one label per feature row: ${
        matrix.shape[0]
      } rows, ${labels.length} labels`,
    );
  }
  return {
    features: tf.tensor2d(matrix.data, [matrix.shape[0], matrix.shape[1]]),
    labels,
  };
}

/**
 * The SHA-256 of bytes or of a string's UTF-8, as 64 lowercase hex digits: the
 * one copy in `@scaling-vicreg/backend/fs`, re-exported here for the feature
 * cache's callers.
 */
export { sha256Hex };

/**
 * A cache key for features: the SHA-256 of the canonical JSON (keys sorted) of
 * what produced them, e.g. the weights' digest, the data set and split, the
 * transform and the number of crops.
 *
 * @param parts Named ingredients; order does not matter.
 * @returns 64 hex digits.
 *
 * @example
 * ```ts
 * import { featureCacheKey } from "@scaling-vicreg/probe/features";
 * const key = await featureCacheKey({ weights: "3f2a…", split: "test", crops: 10 });
 * ```
 */
export async function featureCacheKey(
  parts: Record<string, string | number | boolean>,
): Promise<string> {
  const keys = Object.keys(parts).sort();
  for (const k of keys) {
    const v = parts[k];
    if (
      !(typeof v === "string" || typeof v === "boolean" ||
        (typeof v === "number" && Number.isFinite(v)))
    ) {
      throw new TypeError(
        `Expected cache key part "${k}" to be a string, finite number or boolean: received ${
          String(v)
        }`,
      );
    }
  }
  const canonical = JSON.stringify(keys.map((k) => [k, parts[k]]));
  return await sha256Hex(canonical);
}

/** What {@linkcode loadOrComputeFeatures} returns. */
export interface CachedFeatures {
  /** The array (read from the cache or just computed). */
  array: NpyArray;
  /** Whether it came from the cache. */
  cached: boolean;
  /** The `.npy` file. */
  path: string;
}

/**
 * Reads `<dir>/<key>.npy` if it exists; otherwise runs `compute`, writes its
 * result there atomically (a temporary file renamed into place) and returns it.
 *
 * @param dir The cache directory (created if missing).
 * @param key The file stem, e.g. from {@linkcode featureCacheKey} (letters,
 * digits, `.`, `_`, `-`).
 * @param compute Produces the array on a miss.
 * @returns The array, whether it was cached, and the path.
 *
 * @example
 * ```ts ignore
 * import { featureCacheKey, loadOrComputeFeatures } from "@scaling-vicreg/probe/features";
 * const key = await featureCacheKey({ weights: digest, split: "train", crops: 1 });
 * const { array } = await loadOrComputeFeatures("runs/features", key, async () => {
 *   const m = await extractFeatures(embed, batches);
 *   return { shape: m.shape, dtype: "float32", data: m.data };
 * });
 * ```
 */
export async function loadOrComputeFeatures(
  dir: string,
  key: string,
  compute: () => NpyArray | Promise<NpyArray>,
): Promise<CachedFeatures> {
  if (!/^[A-Za-z0-9._-]+$/.test(key) || key.startsWith(".")) {
    throw new RangeError(
      `Expected a cache key of letters, digits, ".", "_" or "-": received ${
        JSON.stringify(key)
      }`,
    );
  }
  const path = `${dir.replace(/\/+$/, "")}/${key}.npy`;
  let bytes: Uint8Array | null = null;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  if (bytes !== null) {
    try {
      return { array: readNpy(bytes), cached: true, path };
    } catch (cause) {
      throw new TypeError(
        `Feature cache file ${path} is unreadable (delete it to recompute): ${
          (cause as Error).message
        }`,
        { cause },
      );
    }
  }
  const array = await compute();
  const encoded = writeNpy(array);
  await Deno.mkdir(dir, { recursive: true });
  await writeFileAtomic(path, encoded);
  return { array, cached: false, path };
}

/**
 * Reads labelled features from two `.npy` files — features `[N, D]` float32
 * (float64 is converted) and labels `[N]` int32, int64 or uint8 — onto the
 * active backend (dispose the features).
 *
 * @param featuresPath The features `.npy`.
 * @param labelsPath The labels `.npy`.
 * @returns The tensor and the labels.
 *
 * @example
 * ```ts ignore
 * const train = await readLabelledFeatures("train_x.npy", "train_y.npy");
 * ```
 */
export async function readLabelledFeatures(
  featuresPath: string,
  labelsPath: string,
): Promise<LabelledFeatures> {
  const [x, y] = await Promise.all(
    [featuresPath, labelsPath].map(async (path) => {
      try {
        return readNpy(await Deno.readFile(path));
      } catch (cause) {
        const message = `Cannot read ${path}: ${(cause as Error).message}`;
        throw cause instanceof Deno.errors.NotFound
          ? new Deno.errors.NotFound(message, { cause })
          : new TypeError(message, { cause });
      }
    }),
  );
  if (
    x.shape.length !== 2 || !(x.dtype === "float32" || x.dtype === "float64")
  ) {
    throw new TypeError(
      `Expected ${featuresPath} to hold float32 features of rank 2 [N, D]: received ${x.dtype} of shape [${x.shape}]`,
    );
  }
  if (y.shape.length !== 1 || !["int32", "int64", "uint8"].includes(y.dtype)) {
    throw new TypeError(
      `Expected ${labelsPath} to hold integer labels of rank 1 [N]: received ${y.dtype} of shape [${y.shape}]`,
    );
  }
  const labels = y.data instanceof BigInt64Array
    ? Int32Array.from(y.data, (v) => Number(v))
    : Int32Array.from(y.data as Int32Array | Uint8Array);
  const data = x.data instanceof Float32Array
    ? x.data
    : Float32Array.from(x.data as Float64Array);
  return toLabelledFeatures(
    { data, shape: [x.shape[0], x.shape[1]] },
    labels,
  );
}
