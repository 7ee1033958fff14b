/**
 * The host memory the native kernels (`blas`, `native`) read and write in
 * place: the wasm heap of the `blas` backend, or the JavaScript buffers of a
 * cpu-style backend (`native`), behind one {@linkcode WasmBackend} view;
 * checked float32 inputs, outputs with views of the inputs, shared buffers,
 * and the base backend's own kernels to fall back to.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { hostFloat32 } from "./_host_memory.ts";

/** The wasm backend's buffer access, as the BLAS kernels use it. */
export interface WasmBackend {
  /** The wasm module. */
  wasm: unknown;
  /**
   * A new float32 output on the heap.
   *
   * @param shape Its shape.
   * @param dtype `float32`.
   * @returns The output.
   */
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
  /**
   * A view of a tensor's floats on the heap.
   *
   * @param info The tensor.
   * @returns The view (detached when the heap grows).
   */
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

/** A cpu-style backend's buffers (`@tensorflow/tfjs-backend-cpu`'s `data`). */
export interface CpuLike {
  /** Each tensor's values by data id. */
  data: { get(dataId: tf.DataId): { values?: unknown } };
  /**
   * A new tensor on `values`.
   *
   * @param shape Its shape.
   * @param dtype `float32`.
   * @param values Its buffer.
   * @returns The tensor.
   */
  makeTensorInfo(
    shape: number[],
    dtype: "float32",
    values: Float32Array,
  ): tf.TensorInfo;
}

/**
 * The buffer access of a kernel's backend object: a wasm-style backend
 * itself, or the same two methods over a cpu-style backend's buffers
 * (outputs are new JavaScript `Float32Array`s, outside any wasm heap).
 *
 * @param backend The kernel's backend object.
 * @returns Its buffer access.
 * @throws {TypeError} When the backend has neither kind of buffer.
 */
export function heapOf(backend: unknown): WasmBackend {
  const wasm = backend as Partial<WasmBackend>;
  if (typeof wasm.typedArrayFromHeap === "function") {
    return backend as WasmBackend;
  }
  const cpu = backend as Partial<CpuLike>;
  if (cpu.data === undefined || typeof cpu.makeTensorInfo !== "function") {
    throw new TypeError("The backend gives no access to its float32 buffers");
  }
  const b = backend as CpuLike;
  return {
    wasm: undefined,
    makeOutput: (shape) =>
      b.makeTensorInfo(
        shape,
        "float32",
        hostFloat32(tf.util.sizeFromShape(shape)),
      ),
    typedArrayFromHeap: (info) => {
      const values = b.data.get(info.dataId).values;
      if (!(values instanceof Float32Array)) {
        throw new TypeError(
          `Expected float32 data: received ${info.dtype} in a ${values?.constructor?.name}`,
        );
      }
      return values;
    },
  };
}

/** A rank-4 shape (`[N, H, W, C]`, or a filter's `[KH, KW, Ci, Co]`). */
export type Shape4 = [number, number, number, number];

/**
 * A kernel's float32 input, checked.
 *
 * @param inputs The kernel's inputs.
 * @param name The input's name.
 * @param kernel The kernel's name, for messages.
 * @param rank The rank expected, if any.
 * @returns The input.
 * @throws {TypeError} When it is missing, not float32 or of another rank.
 */
export function float32(
  inputs: tf.NamedTensorInfoMap,
  name: string,
  kernel: string,
  rank?: number,
): tf.TensorInfo {
  const info = inputs[name];
  if (info === undefined) {
    throw new TypeError(`${kernel}: missing input '${name}'`);
  }
  if (info.dtype !== "float32") {
    throw new TypeError(
      `${kernel}: expected '${name}' float32: received ${info.dtype}`,
    );
  }
  if (rank !== undefined && info.shape.length !== rank) {
    throw new TypeError(
      `${kernel}: expected '${name}' of rank ${rank}: received rank ${info.shape.length}`,
    );
  }
  return info;
}

/**
 * Runs `compute` on heap views of `inputs` and a new output of `shape`.
 * Views are taken after the output is allocated: an allocation may grow the
 * wasm memory, which detaches earlier views.
 *
 * @param backend The kernel's backend object (see {@linkcode heapOf}).
 * @param shape The output's shape.
 * @param inputs The inputs to view.
 * @param compute Fills the output from the views.
 * @returns The output.
 */
export function withHeap(
  backend: unknown,
  shape: number[],
  inputs: tf.TensorInfo[],
  compute: (out: Float32Array, ...views: Float32Array[]) => void,
): tf.TensorInfo {
  const heap = heapOf(backend);
  const out = heap.makeOutput(shape, "float32");
  if (tf.util.sizeFromShape(shape) === 0) return out;
  compute(
    heap.typedArrayFromHeap(out),
    ...inputs.map((i) => heap.typedArrayFromHeap(i)),
  );
  return out;
}

/**
 * `x`'s buffer as a new output (one more reference, no copy).
 *
 * @param backend The backend holding `x`.
 * @param x The tensor.
 * @returns The new output.
 */
export function shareBuffer(backend: unknown, x: tf.TensorInfo): tf.TensorInfo {
  (backend as { incRef(id: tf.DataId): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

const FALLBACKS = new Map<string, string>();

/**
 * Names the backend whose kernels take the inputs a native kernel of
 * `backendName` leaves (`wasm` for `blas`, `cpu` for `native`).
 *
 * @param backendName The backend the native kernels are registered for.
 * @param base The backend whose kernels it copied.
 */
export function setFallbackBackend(backendName: string, base: string): void {
  FALLBACKS.set(backendName, base);
}

/**
 * The base backend's own kernel, for inputs the native kernels leave to it:
 * the backend {@linkcode setFallbackBackend} named, `wasm` by default.
 *
 * @param backendName The backend the native kernel is registered for.
 * @param kernelName The kernel.
 * @returns The base backend's config.
 * @throws {TypeError} When the base backend has none.
 */
export function fallbackKernel(
  backendName: string,
  kernelName: string,
): tf.KernelConfig {
  const base = FALLBACKS.get(backendName) ?? "wasm";
  const config = tf.getKernel(kernelName, base);
  if (config === undefined) {
    throw new TypeError(`${kernelName}: no ${base} kernel to fall back to`);
  }
  return config;
}
