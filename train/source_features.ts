/**
 * Frozen-backbone features of an image source: eval-mode pooled embeddings of
 * the eval transform (bicubic resize to `size`), or the average over the ten
 * crops of 10-crop test-time augmentation (resize to ⌊size / 0.875⌋²,
 * TenCrop), for train and test alike as in the paper's
 * `create_submission_linear_tta.py`. What the linear probe
 * (`@scaling-vicreg/experiments`) and the online kNN of pretraining embed.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { evalTransform, tenCrop } from "@scaling-vicreg/augment";
import type { ImageSource } from "@scaling-vicreg/data";
import type { ResNet } from "@scaling-vicreg/models";

/** Options of {@linkcode embedSource}. */
export interface EmbedSourceOptions {
  /** Input size of the backbone. @default {96} */
  size?: number;
  /** Average the features of the ten crops (10-crop TTA). @default {false} */
  tta?: boolean;
  /** Images per forward pass. @default {64} */
  batchSize?: number;
  /** Called after each batch with images done and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** Features and labels of a source. */
export interface SourceFeatures {
  /** `[N, E]` row-major float32 features. */
  features: Float32Array;
  /** N. */
  count: number;
  /** E. */
  dim: number;
  /** Labels (−1 where unlabeled). */
  labels: Int32Array;
}

/**
 * Embeds every image of a source with a frozen backbone in eval mode
 * (BatchNorm on its running statistics, which do not move).
 *
 * @example
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { proceduralDataset } from "@scaling-vicreg/data";
 * import { createResNet } from "@scaling-vicreg/models";
 * import { embedSource } from "@scaling-vicreg/train/source-features";
 * await useBackend("cpu");
 * const backbone = createResNet("tiny", new Rng(0), { stem: "cifar" });
 * const f = await embedSource(backbone, proceduralDataset({ n: 4, size: 16 }), { size: 16 });
 * console.log(f.count, f.dim === backbone.embeddingDim, f.labels); // 4 true Int32Array [0, 1, 2, 3]
 * backbone.dispose();
 * ```
 *
 * @param backbone The backbone.
 * @param source The images.
 * @param options See {@linkcode EmbedSourceOptions}.
 * @returns `[N, E]` features and the labels.
 */
export async function embedSource(
  backbone: ResNet,
  source: ImageSource,
  options: EmbedSourceOptions = {},
): Promise<SourceFeatures> {
  const { size = 96, tta = false, batchSize = 64, onProgress } = options;
  const n = source.length;
  const dim = backbone.embeddingDim;
  const features = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    const images = await Promise.all(
      Array.from({ length: count }, (_, i) => source.get(start + i)),
    );
    for (let i = 0; i < count; i++) {
      labels[start + i] = source.label(start + i) ?? -1;
    }
    const batch = tf.tidy(() => {
      const x = tta
        ? tenCrop(images, { size })
        : evalTransform(images, { size });
      const e = backbone.forward(x, { training: false }).embedding;
      // TTA: [N·10, E] -> [N, 10, E] -> mean over the crops -> [N, E]
      return tta ? tf.mean(tf.reshape(e, [count, 10, dim]), 1) : e;
    });
    features.set(await batch.data() as Float32Array, start * dim);
    batch.dispose();
    onProgress?.(start + count, n);
  }
  return { features, count: n, dim, labels };
}
