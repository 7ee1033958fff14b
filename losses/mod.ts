/**
 * The VICReg objective and its local variants: {@linkcode vicregLoss}
 * (Bardes et al. 2022, with a `paper-code` preset), {@linkcode localLoss}
 * (same-index, location-matched and feature-matched local losses, VICRegL
 * 2022b), their multi-crop forms {@linkcode multiViewLoss} and
 * {@linkcode multiViewLocalLoss} (G global + M local views, VICRegL's
 * `global_loss` / `local_loss`) and {@linkcode embeddingStd} (collapse
 * monitoring).
 *
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { vicregLoss } from "@scaling-vicreg/losses";
 * await useBackend("cpu");
 * const x = tf.randomNormal([16, 8], 0, 1, "float32", 1) as tf.Tensor2D;
 * const y = tf.randomNormal([16, 8], 0, 1, "float32", 2) as tf.Tensor2D;
 * const { loss } = tf.tidy(() => ({ loss: vicregLoss(x, y).loss }));
 * tf.dispose([x, y, loss]);
 * ```
 *
 * @module
 */
export * from "./vicreg.ts";
export * from "./local.ts";
export * from "./multi_view.ts";
export * from "./monitor.ts";
