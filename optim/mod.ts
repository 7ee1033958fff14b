/**
 * Optimizers with PyTorch semantics: the update rules, one parameter at a time
 * and free of state ({@linkcode sgdUpdate} `torch.optim.SGD`,
 * {@linkcode adamwUpdate} `torch.optim.AdamW`, {@linkcode larsUpdate}
 * facebookresearch/vicreg's `LARS`), and {@linkcode createOptimizer}, which
 * keeps named variables' optimizer state for checkpoints. The pretraining loop
 * and the linear probe both run `createOptimizer`, so there is one copy of
 * each rule.
 *
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { sgdUpdate } from "@scaling-vicreg/optim";
 * await useBackend("cpu");
 * const p = tf.ones([3]), g = tf.ones([3]), mu = tf.zeros([3]);
 * const next = tf.tidy(() =>
 *   sgdUpdate({ param: p, grad: g, momentumBuffer: mu }, 0.5, { momentum: 0.9 })
 * );
 * tf.dispose([p, g, mu, next.param, next.momentumBuffer]);
 * ```
 *
 * @module
 */
export * from "./sgd.ts";
export * from "./adamw.ts";
export * from "./lars.ts";
export * from "./optimizer.ts";
