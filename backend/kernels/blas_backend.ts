/**
 * `blas`: the wasm backend (XNNPACK, SIMD) with its convolutions, their
 * gradients, its matrix products and BatchNorm's sums over leading axes moved
 * to a native multithreaded BLAS through Deno's FFI (see `blas.ts`), copies
 * that TF.js makes of saved tensors (`Identity`, same-type `Cast`) replaced by
 * shared buffers, a one-pass `MaxPoolGrad`, and the fused augmentation
 * kernels. The other element-wise ops, the other reductions and the optimizer
 * stay on wasm.
 *
 * It is a second TF.js backend sharing the wasm module, so tensors stay in
 * the wasm heap and the BLAS reads and writes them in place; `wasm` itself is
 * left as it was.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { geometry } from "./_geometry.ts";
import {
  type Blas,
  conv2d,
  conv2dBackpropFilter,
  conv2dBackpropInput,
  loadBlas,
  Scratch,
} from "./blas.ts";
import { registerAugmentKernels } from "./augment_kernels.ts";
import { type Dnnl, loadDnnl } from "./dnnl.ts";
import { setEnvUnlessSet } from "./_ffi.ts";
import {
  BATCH_NORM_TRAIN_GRAD_KERNEL,
  BATCH_NORM_TRAIN_KERNEL,
} from "../kernel_names.ts";

/** The TF.js name of the backend {@linkcode registerBlasBackend} registers. */
export const BLAS_BACKEND = "blas";

/** The wasm backend's buffer access, as the BLAS kernels use it. */
interface WasmBackend {
  wasm: unknown;
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

type Shape4 = [number, number, number, number];

function float32(
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
 */
function withHeap(
  backend: WasmBackend,
  shape: number[],
  inputs: tf.TensorInfo[],
  compute: (out: Float32Array, ...views: Float32Array[]) => void,
): tf.TensorInfo {
  const out = backend.makeOutput(shape, "float32");
  if (tf.util.sizeFromShape(shape) === 0) return out;
  compute(
    backend.typedArrayFromHeap(out),
    ...inputs.map((i) => backend.typedArrayFromHeap(i)),
  );
  return out;
}

/**
 * Kernel configs running `Conv2D`, `Conv2DBackpropInput`,
 * `Conv2DBackpropFilter`, `FusedConv2D` (with oneDNN), `BatchMatMul`, and `Sum`/`Mean` over leading axes
 * on a BLAS, plus a copy-free `Identity` and same-type `Cast` and a one-pass
 * `MaxPoolGrad`, for a wasm-style backend (one with `makeOutput` and
 * `typedArrayFromHeap`). Inputs they do not handle go to wasm's kernels.
 *
 * @example
 * ```ts ignore
 * import { blasKernelConfigs } from "./blas_backend.ts";
 * import { loadBlas } from "./blas.ts";
 * console.log(blasKernelConfigs("blas", loadBlas()).length); // 10
 * ```
 *
 * @param backendName The TF.js backend the kernels are for.
 * @param blas The BLAS.
 * @param scratch Buffers the convolutions reuse.
 * @param dnnl oneDNN, when loaded: the three convolution kernels run on it
 * wherever it has a primitive for the geometry, and on the BLAS elsewhere;
 * it also brings the two batch-norm kernels (`BATCH_NORM_TRAIN_KERNEL` and
 * its gradient).
 * @returns Ten kernel configs, twelve with oneDNN.
 */
export function blasKernelConfigs(
  backendName: string,
  blas: Blas,
  scratch: Scratch = new Scratch(),
  dnnl?: Dnnl,
): tf.KernelConfig[] {
  const batchNorm = dnnl === undefined
    ? []
    : batchNormKernelConfigs(backendName, dnnl);
  return [
    ...batchNorm,
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
          return wasmKernel(tf.Identity).kernelFunc(args);
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
          return wasmKernel(tf.Cast).kernelFunc(args);
        }
        return shareBuffer(args.backend, x);
      },
    },
    {
      // wasm's MaxPoolGrad takes ~150 ms for a ResNet-50 stem at batch 32;
      // this one routes each output gradient to its window's first maximum
      // (the cpu backend's rule) in one pass over the input.
      kernelName: tf.MaxPoolGrad,
      backendName,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args;
        const dy = float32(inputs, "dy", tf.MaxPoolGrad, 4);
        const x = float32(inputs, "input", tf.MaxPoolGrad, 4);
        const a = attrs ?? {};
        const info = tf.backend_util.computePool2DInfo(
          x.shape as Shape4,
          a.filterSize as number | [number, number],
          a.strides as number | [number, number],
          1,
          a.pad as "valid" | "same" | number,
          a.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
        );
        return withHeap(
          backend as unknown as WasmBackend,
          x.shape,
          [x, dy],
          (dx, xv, dyv) => maxPoolGrad(info, xv, dyv, dx),
        );
      },
    },
    leadingReduction(backendName, tf.Sum, blas, scratch, false),
    leadingReduction(backendName, tf.Mean, blas, scratch, true),
    {
      kernelName: tf.Conv2D,
      backendName,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args;
        const x = float32(inputs, "x", tf.Conv2D, 4);
        const filter = float32(inputs, "filter", tf.Conv2D, 4);
        const a = attrs ?? {};
        if (!isPlainNhwc(a)) {
          // NCHW or dilated: wasm's own kernel.
          return wasmKernel(tf.Conv2D).kernelFunc(args);
        }
        const g = geometry(
          x.shape as Shape4,
          filter.shape as Shape4,
          a,
          tf.Conv2D,
        );
        return withHeap(
          backend as unknown as WasmBackend,
          [g.n, g.oh, g.ow, g.co],
          [x, filter],
          (out, xv, wv) => {
            if (dnnl?.conv2d(g, xv, wv, out)) return;
            conv2d(blas, scratch, g, xv, wv, out);
          },
        );
      },
    },
    {
      // Conv + bias + ReLU (an eval-mode conv → BatchNorm → ReLU with the
      // BatchNorm folded in) as one oneDNN primitive; wasm's XNNPACK kernel
      // for other activations, NCHW, dilation, or without oneDNN.
      kernelName: tf.FusedConv2D,
      backendName,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args;
        const a = attrs ?? {};
        const bias = inputs.bias;
        const activation = (a.activation ?? "linear") as string;
        const x = inputs.x;
        const filter = inputs.filter;
        if (
          dnnl === undefined || x === undefined || filter === undefined ||
          x.dtype !== "float32" || filter.dtype !== "float32" ||
          (activation !== "linear" && activation !== "relu") ||
          inputs.preluActivationWeights !== undefined ||
          (bias !== undefined &&
            (bias.dtype !== "float32" ||
              tf.util.sizeFromShape(bias.shape) !==
                filter.shape[filter.shape.length - 1])) ||
          !isPlainNhwc(a)
        ) {
          return wasmKernel(tf.FusedConv2D).kernelFunc(args);
        }
        const g = geometry(
          x.shape as Shape4,
          filter.shape as Shape4,
          a,
          tf.FusedConv2D,
        );
        let done = false;
        const out = withHeap(
          backend as unknown as WasmBackend,
          [g.n, g.oh, g.ow, g.co],
          bias === undefined ? [x, filter] : [x, filter, bias],
          (y, xv, wv, bv) => {
            done = dnnl.conv2dFused(g, xv, wv, bv, activation === "relu", y);
          },
        );
        if (done || g.n * g.oh * g.ow * g.co === 0) return out;
        (backend as unknown as { disposeData(id: tf.DataId): void })
          .disposeData(out.dataId);
        return wasmKernel(tf.FusedConv2D).kernelFunc(args);
      },
    },
    {
      kernelName: tf.Conv2DBackpropInput,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const dy = float32(inputs, "dy", tf.Conv2DBackpropInput, 4);
        const filter = float32(inputs, "filter", tf.Conv2DBackpropInput, 4);
        const inputShape = (attrs ?? {}).inputShape as Shape4;
        const g = geometry(
          inputShape,
          filter.shape as Shape4,
          attrs ?? {},
          tf.Conv2DBackpropInput,
        );
        return withHeap(
          backend as unknown as WasmBackend,
          inputShape,
          [dy, filter],
          (dx, dyv, wv) => {
            if (dnnl?.conv2dBackpropInput(g, dyv, wv, dx)) return;
            conv2dBackpropInput(blas, scratch, g, dyv, wv, dx);
          },
        );
      },
    },
    {
      kernelName: tf.Conv2DBackpropFilter,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const x = float32(inputs, "x", tf.Conv2DBackpropFilter, 4);
        const dy = float32(inputs, "dy", tf.Conv2DBackpropFilter, 4);
        const filterShape = (attrs ?? {}).filterShape as Shape4;
        const g = geometry(
          x.shape as Shape4,
          filterShape,
          attrs ?? {},
          tf.Conv2DBackpropFilter,
        );
        return withHeap(
          backend as unknown as WasmBackend,
          filterShape,
          [x, dy],
          (dw, xv, dyv) => {
            if (dnnl?.conv2dBackpropFilter(g, xv, dyv, dw)) return;
            conv2dBackpropFilter(blas, scratch, g, xv, dyv, dw);
          },
        );
      },
    },
    {
      kernelName: tf.BatchMatMul,
      backendName,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args;
        const a = inputs.a;
        const b = inputs.b;
        const plan = a !== undefined && b !== undefined
          ? matMulPlan(a, b, attrs ?? {})
          : undefined;
        if (plan === undefined) {
          return wasmKernel(tf.BatchMatMul).kernelFunc(args);
        }
        return withHeap(
          backend as unknown as WasmBackend,
          plan.outShape,
          [a!, b!],
          (c, av, bv) => {
            for (let i = 0; i < plan.batch; i++) {
              blas.sgemm(
                plan.transA,
                plan.transB,
                plan.m,
                plan.n,
                plan.k,
                1,
                av.subarray(plan.strideA * i),
                plan.transA ? plan.m : plan.k,
                bv.subarray(plan.strideB * i),
                plan.transB ? plan.k : plan.n,
                0,
                c.subarray(plan.m * plan.n * i),
                plan.n,
              );
            }
          },
        );
      },
    },
  ];
}

/**
 * `BATCH_NORM_TRAIN_KERNEL` and its gradient on oneDNN: one pass each over
 * the activations (with the ReLU fused), where the same work as TF.js ops is
 * about ten element-wise kernels and two reductions.
 */
function batchNormKernelConfigs(
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
        const b = backend as unknown as WasmBackend;
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
        const b = backend as unknown as WasmBackend;
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

/** Whether conv attributes are NHWC with dilation 1 (what the kernels take). */
function isPlainNhwc(attrs: tf.NamedAttrMap): boolean {
  return (attrs.dataFormat ?? "NHWC") === "NHWC" &&
    tf.backend_util.tupleValuesAreOne(
      (attrs.dilations ?? 1) as number | [number, number],
    );
}

/** `x`'s buffer as a new output (one more reference, no copy). */
function shareBuffer(backend: unknown, x: tf.TensorInfo): tf.TensorInfo {
  (backend as { incRef(id: tf.DataId): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function wasmKernel(kernelName: string): tf.KernelConfig {
  const config = tf.getKernel(kernelName, "wasm");
  if (config === undefined) {
    throw new TypeError(`${kernelName}: no wasm kernel to fall back to`);
  }
  return config;
}

/**
 * The gradient of a 2-D max pool (NHWC): `dx` gets each `dy` at the first
 * maximum of its window, in row-major window order.
 */
function maxPoolGrad(
  info: tf.backend_util.Conv2DInfo,
  x: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
): void {
  const {
    batchSize,
    inHeight: h,
    inWidth: w,
    inChannels: c,
    outHeight: oh,
    outWidth: ow,
    strideHeight: sh,
    strideWidth: sw,
    filterHeight: fh,
    filterWidth: fw,
  } = info;
  const { top, left } = info.padInfo;
  dx.fill(0);
  const best = new Float32Array(c);
  const where = new Int32Array(c);
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * sh - top;
      const ylo = Math.max(0, y0);
      const yhi = Math.min(h, y0 + fh);
      for (let ox = 0; ox < ow; ox++) {
        const x0 = ox * sw - left;
        const xlo = Math.max(0, x0);
        const xhi = Math.min(w, x0 + fw);
        best.fill(-Infinity);
        where.fill(-1);
        for (let iy = ylo; iy < yhi; iy++) {
          for (let ix = xlo; ix < xhi; ix++) {
            const base = ((n * h + iy) * w + ix) * c;
            for (let d = 0; d < c; d++) {
              const v = x[base + d];
              if (v > best[d]) {
                best[d] = v;
                where[d] = base + d;
              }
            }
          }
        }
        const o = ((n * oh + oy) * ow + ox) * c;
        for (let d = 0; d < c; d++) {
          if (where[d] >= 0) dx[where[d]] += dy[o + d];
        }
      }
    }
  }
}

/**
 * `Sum` or `Mean` over the leading axes `[0, j)` of a float32 tensor (what
 * BatchNorm asks for on NHWC maps) as one product `ones[1, M] · x[M, C]`:
 * wasm transposes the input first for any axes but the last.
 */
function leadingReduction(
  backendName: string,
  kernelName: string,
  blas: Blas,
  scratch: Scratch,
  mean: boolean,
): tf.KernelConfig {
  return {
    kernelName,
    backendName,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const x = inputs.x;
      const plan = x === undefined ? undefined : reductionPlan(x, attrs ?? {});
      if (plan === undefined) return wasmKernel(kernelName).kernelFunc(args);
      const { m, c, outShape } = plan;
      const ones = scratch.ones(m);
      return withHeap(
        backend as unknown as WasmBackend,
        outShape,
        [x!],
        (out, xv) =>
          blas.sgemm(
            false,
            false,
            1,
            c,
            m,
            mean ? 1 / m : 1,
            ones,
            m,
            xv,
            c,
            0,
            out,
            c,
          ),
      );
    },
  };
}

function reductionPlan(
  x: tf.TensorInfo,
  attrs: tf.NamedAttrMap,
): { m: number; c: number; outShape: number[] } | undefined {
  if (x.dtype !== "float32" || x.shape.length === 0) return undefined;
  const axes = tf.util.parseAxisParam(
    attrs.axis as number | number[],
    x.shape,
  ).sort((a, b) => a - b);
  const j = axes.length;
  if (j === 0 || axes.some((a, i) => a !== i)) return undefined;
  const m = tf.util.sizeFromShape(x.shape.slice(0, j));
  const c = tf.util.sizeFromShape(x.shape.slice(j));
  if (m === 0) return undefined;
  const outShape = attrs.keepDims === true
    ? x.shape.map((d, i) => (i < j ? 1 : d))
    : x.shape.slice(j);
  return { m, c, outShape };
}

interface MatMulPlan {
  outShape: number[];
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  strideA: number;
  strideB: number;
}

/**
 * How to run a `BatchMatMul` as sgemm calls, or `undefined` for the cases
 * left to wasm (non-float32, or batch dimensions that broadcast other than
 * all-or-one).
 */
function matMulPlan(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  attrs: tf.NamedAttrMap,
): MatMulPlan | undefined {
  if (a.dtype !== "float32" || b.dtype !== "float32") return undefined;
  if (a.shape.length < 2 || b.shape.length < 2) return undefined;
  const transA = attrs.transposeA === true;
  const transB = attrs.transposeB === true;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb) return undefined;
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const sizeA = tf.util.sizeFromShape(batchA);
  const sizeB = tf.util.sizeFromShape(batchB);
  let outBatch: number[];
  if (sizeA === 1) outBatch = batchB.length >= batchA.length ? batchB : batchA;
  else if (sizeB === 1) {
    outBatch = batchA.length >= batchB.length ? batchA : batchB;
  } else if (tf.util.arraysEqual(batchA, batchB)) outBatch = batchA;
  else return undefined;
  if (sizeA !== 1 && sizeB !== 1 && sizeA !== sizeB) return undefined;
  const batch = Math.max(sizeA, sizeB);
  return {
    outShape: [...outBatch, m, n],
    batch,
    m,
    n,
    k,
    transA,
    transB,
    strideA: sizeA === 1 ? 0 : m * k,
    strideB: sizeB === 1 ? 0 : k * n,
  };
}

/** The native libraries the `blas` backend runs on. */
export interface NativeLibraries {
  /** The BLAS (matrix products, reductions, convolutions without oneDNN). */
  blas: Blas;
  /** oneDNN for the convolutions, when one loaded. */
  dnnl?: Dnnl;
  /** Why oneDNN is not in use, when it is not. */
  dnnlUnavailable?: string;
}

let registered: Promise<NativeLibraries> | undefined;

/**
 * Registers the `blas` backend with TF.js once, without activating it: loads
 * the BLAS (see `loadBlas`) and, when it can, oneDNN for the convolutions
 * (see `loadDnnl`; without it they run on the BLAS), initialises the wasm
 * module, and registers a second wasm backend on it with every wasm kernel
 * plus the native ones.
 *
 * @example
 * ```ts ignore
 * import * as tf from "@tensorflow/tfjs-core";
 * import { registerBlasBackend } from "./blas_backend.ts";
 * const { blas, dnnl } = await registerBlasBackend();
 * await tf.setBackend("blas");
 * console.log(blas.library, dnnl?.version);
 * ```
 *
 * @returns The libraries in use.
 * @throws {Error} When no BLAS opens, naming what was tried.
 */
export function registerBlasBackend(): Promise<NativeLibraries> {
  registered ??= (async () => {
    // oneDNN (OpenMP) and OpenBLAS (pthreads) each keep their worker threads
    // spinning for a while after a call; on a few cores the spinning threads
    // of one take the cores the other needs next (a ResNet-18 step: 2.9 s
    // with spinning, 2.4 s without). Both read these when they load.
    setEnvUnlessSet("OMP_WAIT_POLICY", "PASSIVE");
    let dnnl: Dnnl | undefined;
    let dnnlUnavailable: string | undefined;
    try {
      dnnl = loadDnnl();
      setEnvUnlessSet("OPENBLAS_THREAD_TIMEOUT", "4");
    } catch (error) {
      dnnlUnavailable = error instanceof Error ? error.message : String(error);
    }
    const blas = loadBlas();
    await import("@tensorflow/tfjs-backend-wasm");
    let wasm = tf.findBackend("wasm") as unknown as WasmBackend | null;
    if (wasm === null) {
      // Initialises the wasm module (the only way TF.js exposes), then puts
      // the previous backend back.
      const previous = tf.getBackend();
      await tf.setBackend("wasm");
      wasm = tf.findBackend("wasm") as unknown as WasmBackend;
      if (previous !== undefined && previous !== "wasm") {
        await tf.setBackend(previous);
      }
    }
    const WasmClass = (wasm as unknown as { constructor: WasmConstructor })
      .constructor;
    const module = wasm.wasm;
    // A second backend object on the same wasm module: its own tensors,
    // the same heap and kernels. Disposing it must not tear the module
    // down under the `wasm` backend.
    const shared = wasm as unknown as { dataIdNextNumber: number };
    class BlasBackend extends WasmClass {
      constructor(module: unknown) {
        super(module);
        // The module keeps one table of tensors by id for both backends, and
        // each backend object numbers its tensors from 1: two live tensors,
        // one of each, would share an id and the kernels would read the
        // wrong one. Both draw from the wasm backend's counter instead.
        Object.defineProperty(this, "dataIdNextNumber", {
          get: () => shared.dataIdNextNumber,
          set: (next: number) => {
            shared.dataIdNextNumber = next;
          },
        });
      }
      override dispose(): void {}
    }
    // Priority 0: never chosen by TF.js on its own, only when named.
    tf.registerBackend(BLAS_BACKEND, () => new BlasBackend(module), 0);
    tf.copyRegisteredKernels("wasm", BLAS_BACKEND);
    registerAugmentKernels(BLAS_BACKEND);
    for (
      const config of blasKernelConfigs(
        BLAS_BACKEND,
        blas,
        new Scratch(),
        dnnl,
      )
    ) {
      if (tf.getKernel(config.kernelName, BLAS_BACKEND) !== undefined) {
        tf.unregisterKernel(config.kernelName, BLAS_BACKEND);
      }
      tf.registerKernel(config);
    }
    return { blas, dnnl, dnnlUnavailable };
  })();
  registered.catch(() => registered = undefined);
  return registered;
}

type WasmConstructor = new (module: unknown) => tf.KernelBackend;
