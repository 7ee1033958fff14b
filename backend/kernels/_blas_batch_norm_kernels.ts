/**
 * The `blas` backend's training-mode BatchNorm kernels
 * (`BATCH_NORM_TRAIN_KERNEL` and its gradient) on oneDNN.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Dnnl } from "./dnnl.ts";
import { float32, heapOf } from "./_wasm_heap.ts";
import {
  BATCH_NORM_TRAIN_GRAD_KERNEL,
  BATCH_NORM_TRAIN_KERNEL,
} from "../kernel_names.ts";

/**
 * `BATCH_NORM_TRAIN_KERNEL` and its gradient on oneDNN: one pass each over
 * the activations (with the ReLU fused), where the same work as TF.js ops is
 * about ten element-wise kernels and two reductions.
 *
 * @param backendName The TF.js backend the kernels are for.
 * @param dnnl oneDNN.
 * @returns The two configs.
 */
export function batchNormKernelConfigs(
  backendName: string,
  dnnl: Dnnl,
): tf.KernelConfig[] {
  const plan = (
    kernel: string,
    x: tf.TensorInfo,
    attrs: tf.NamedAttrMap | undefined,
  ) => {
    const eps = Number(attrs?.eps);
    const relu = attrs?.relu === true;
    const channels = x.shape[x.shape.length - 1] ?? 0;
    const rows = channels > 0 ? tf.util.sizeFromShape(x.shape) / channels : 0;
    const floats = rows > 0 && eps > 0
      ? dnnl.batchNormWorkspaceFloats(rows, channels, eps, relu)
      : undefined;
    if (floats === undefined) {
      throw new RangeError(
        `${kernel}: no oneDNN batch normalisation for shape [${x.shape}] with eps ${eps}`,
      );
    }
    return { eps, relu, channels, rows, floats };
  };
  const checkShapes = (
    kernel: string,
    channels: number,
    perChannel: tf.TensorInfo[],
    like?: [tf.TensorInfo, tf.TensorInfo],
  ): void => {
    for (const t of perChannel) {
      if (t.shape.length !== 1 || t.shape[0] !== channels) {
        throw new TypeError(
          `${kernel}: expected per-channel inputs of shape [${channels}]: received [${t.shape}]`,
        );
      }
    }
    if (
      like !== undefined && !tf.util.arraysEqual(like[0].shape, like[1].shape)
    ) {
      throw new TypeError(
        `${kernel}: expected dy of x's shape [${like[0].shape}]: received [${
          like[1].shape
        }]`,
      );
    }
  };
  return [
    {
      kernelName: BATCH_NORM_TRAIN_KERNEL,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const k = BATCH_NORM_TRAIN_KERNEL;
        const x = float32(inputs, "x", k);
        const gamma = float32(inputs, "gamma", k, 1);
        const beta = float32(inputs, "beta", k, 1);
        const { eps, relu, channels, rows, floats } = plan(k, x, attrs);
        checkShapes(k, channels, [gamma, beta]);
        const b = heapOf(backend);
        const y = b.makeOutput(x.shape, "float32");
        const mean = b.makeOutput([channels], "float32");
        const variance = b.makeOutput([channels], "float32");
        const workspace = b.makeOutput([Math.max(1, floats)], "float32");
        const view = (i: tf.TensorInfo) => b.typedArrayFromHeap(i);
        dnnl.batchNormForward(rows, channels, eps, relu, {
          x: view(x),
          gamma: view(gamma),
          beta: view(beta),
          y: view(y),
          mean: view(mean),
          variance: view(variance),
          workspace: relu ? view(workspace) : undefined,
        });
        return [y, mean, variance, workspace];
      },
    },
    {
      kernelName: BATCH_NORM_TRAIN_GRAD_KERNEL,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const k = BATCH_NORM_TRAIN_GRAD_KERNEL;
        const x = float32(inputs, "x", k);
        const dy = float32(inputs, "dy", k);
        const { eps, relu, channels, rows } = plan(k, x, attrs);
        checkShapes(
          k,
          channels,
          ["mean", "variance", "gamma", "beta"].map((n) =>
            float32(inputs, n, k)
          ),
          [x, dy],
        );
        const b = heapOf(backend);
        const dx = b.makeOutput(x.shape, "float32");
        const dGamma = b.makeOutput([channels], "float32");
        const dBeta = b.makeOutput([channels], "float32");
        const view = (name: string, rank?: number) =>
          b.typedArrayFromHeap(float32(inputs, name, k, rank));
        dnnl.batchNormBackward(rows, channels, eps, relu, {
          x: b.typedArrayFromHeap(x),
          dy: b.typedArrayFromHeap(dy),
          mean: view("mean", 1),
          variance: view("variance", 1),
          gamma: view("gamma", 1),
          beta: view("beta", 1),
          workspace: relu ? view("workspace", 1) : undefined,
          dx: b.typedArrayFromHeap(dx),
          dGamma: b.typedArrayFromHeap(dGamma),
          dBeta: b.typedArrayFromHeap(dBeta),
        });
        return [dx, dGamma, dBeta];
      },
    },
  ];
}
