/**
 * Batched evaluation-mode embedding of an image array, the core of
 * `vicreg embed`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NpyArray } from "@scaling-vicreg/backend/npy";
import type { ResNet } from "./resnet.ts";

/** Options of {@linkcode embedImages}. */
export interface EmbedImagesOptions {
  /** Images per forward pass. @default {64} */
  batchSize?: number;
  /** Called after each batch with the number of images done. @default {undefined} */
  onProgress?: (done: number, total: number) => void;
}

/** The defaults of {@linkcode EmbedImagesOptions}. */
export const DEFAULT_EMBED_IMAGES_OPTIONS: Readonly<
  { batchSize: number }
> = Object.freeze({ batchSize: 64 });

/**
 * Runs a backbone in evaluation mode over normalised images `[N, H, W, 3]`
 * (float32, NHWC, as a `.npy` array) in batches and returns the pooled
 * embeddings `[N, E]` as a float32 array. Each batch is read back with
 * `await data()`, so it works on every backend, WebGPU included.
 *
 * Rejects with a `TypeError` for a non-float32 or non-`[N, H, W, 3]` array
 * and a `RangeError` for a batch size below 1.
 *
 * @example
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { createResNet, embedImages } from "@scaling-vicreg/models";
 * await useBackend("cpu");
 * const net = createResNet("tiny", new Rng(0), { widthMultiplier: 0.25 });
 * const images = { shape: [3, 8, 8, 3], dtype: "float32" as const, data: new Float32Array(3 * 8 * 8 * 3) };
 * const out = await embedImages(net, images, { batchSize: 2 });
 * console.log(out.shape); // [3, 32]
 * net.dispose();
 * ```
 *
 * @param net The backbone.
 * @param images Normalised images `[N, H, W, 3]`, float32.
 * @param options Batch size and progress callback; see {@linkcode EmbedImagesOptions}.
 * @returns Embeddings `[N, E]`, float32.
 */
export async function embedImages(
  net: ResNet,
  images: NpyArray,
  options: EmbedImagesOptions = {},
): Promise<NpyArray> {
  const { batchSize } = { ...DEFAULT_EMBED_IMAGES_OPTIONS, ...options };
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(
      `Expected batchSize to be a positive integer: received ${batchSize}`,
    );
  }
  if (
    images.dtype !== "float32" || images.shape.length !== 4 ||
    images.shape[3] !== 3
  ) {
    throw new TypeError(
      `Expected float32 images [N, H, W, 3]: received ${images.dtype} [${images.shape}]`,
    );
  }
  const [n, h, w] = images.shape;
  const dim = net.embeddingDim;
  const out = new Float32Array(n * dim);
  const pixels = h * w * 3;
  const data = images.data as Float32Array;
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    const values = tf.tidy(() => {
      const x = tf.tensor4d(
        data.subarray(start * pixels, (start + count) * pixels),
        [count, h, w, 3],
      );
      return net.forward(x).embedding;
    });
    try {
      out.set(await values.data() as Float32Array, start * dim);
    } finally {
      values.dispose();
    }
    options.onProgress?.(start + count, n);
  }
  return { shape: [n, dim], dtype: "float32", data: out };
}
