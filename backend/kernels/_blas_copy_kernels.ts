/**
 * The `blas` backend's copy-free `Identity` and same-type `Cast`: the output
 * shares the input's buffer.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { fallbackKernel, shareBuffer } from "./_wasm_heap.ts";

/**
 * `Identity` and same-type `Cast` sharing their input's buffer; other inputs
 * go to wasm's kernels.
 *
 * @param backendName The TF.js backend the kernels are for.
 * @returns The two configs.
 */
export function copyFreeKernelConfigs(backendName: string): tf.KernelConfig[] {
  return [
    {
      // wasm's Identity copies the tensor; TF.js clones every tensor a tape
      // node saves for the backward pass, so a training step made hundreds
      // of activation-sized copies. Sharing the buffer (with a reference
      // count, as wasm's own Reshape does) is enough: kernels never write
      // into their inputs.
      kernelName: tf.Identity,
      backendName,
      kernelFunc: (args) => {
        const x = args.inputs.x;
        if (x === undefined || x.dtype === "string") {
          return fallbackKernel(backendName, tf.Identity).kernelFunc(args);
        }
        return shareBuffer(args.backend, x);
      },
    },
    {
      // A float32 → float32 cast (tf.moments makes one per call) shares the
      // buffer instead of copying it, as Identity does.
      kernelName: tf.Cast,
      backendName,
      kernelFunc: (args) => {
        const x = args.inputs.x;
        const dtype = (args.attrs ?? {}).dtype;
        if (x === undefined || x.dtype === "string" || x.dtype !== dtype) {
          return fallbackKernel(backendName, tf.Cast).kernelFunc(args);
        }
        return shareBuffer(args.backend, x);
      },
    },
  ];
}
