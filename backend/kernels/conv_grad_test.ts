import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "../backend.ts";
import { Rng } from "../random.ts";
import {
  assertClose,
  assertEquals,
  assertThrows,
  assertTrue,
  ignoreUnless,
} from "../testing.ts";
import { convGradKernelConfigs } from "./conv_grad.ts";

type Shape4 = [number, number, number, number];
type Pad = "same" | "valid" | number | [
  [number, number],
  [number, number],
  [number, number],
  [number, number],
];

interface Case {
  x: Shape4;
  filter: Shape4;
  strides: number | [number, number];
  pad: Pad;
}

const CASES: Case[] = [
  { x: [2, 7, 7, 3], filter: [3, 3, 3, 4], strides: 1, pad: "same" },
  { x: [2, 8, 8, 4], filter: [3, 3, 4, 5], strides: 2, pad: "same" },
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 2], strides: 2, pad: "valid" },
  { x: [2, 8, 8, 4], filter: [1, 1, 4, 6], strides: 2, pad: "valid" },
  { x: [2, 8, 8, 4], filter: [1, 1, 4, 6], strides: 1, pad: "valid" },
  { x: [2, 6, 6, 3], filter: [3, 3, 3, 4], strides: 1, pad: 1 },
  // The ResNet stem: 7x7 stride 2, explicit symmetric padding 3.
  {
    x: [1, 10, 10, 3],
    filter: [7, 7, 3, 4],
    strides: 2,
    pad: [[0, 0], [3, 3], [3, 3], [0, 0]],
  },
  // Asymmetric explicit padding, different strides per axis.
  {
    x: [2, 6, 5, 3],
    filter: [3, 2, 3, 4],
    strides: [1, 2],
    pad: [[0, 0], [0, 2], [1, 0], [0, 0]],
  },
];

const TOLERANCE = { rtol: 1e-5, atol: 2e-5 };

function randomArray(rng: Rng, shape: number[]): Float32Array {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  rng.fillNormal(values, 0, 1);
  return values;
}

interface CaseData {
  x: Float32Array;
  filter: Float32Array;
  dy: Float32Array;
  dyShape: Shape4;
}

function caseData(c: Case, seed: number): CaseData {
  const rng = new Rng(seed);
  const dyShape = tf.backend_util.computeConv2DInfo(
    c.x,
    c.filter,
    c.strides,
    1,
    c.pad,
  ).outShape as Shape4;
  return {
    x: randomArray(rng, c.x),
    filter: randomArray(rng, c.filter),
    dy: randomArray(rng, dyShape),
    dyShape,
  };
}

function attrsOf(c: Case): tf.NamedAttrMap {
  return {
    strides: c.strides,
    pad: c.pad,
    dataFormat: "NHWC",
    dimRoundingMode: undefined,
    filterShape: c.filter,
    inputShape: c.x,
  } as unknown as tf.NamedAttrMap;
}

/**
 * Both gradients through the active backend's registered kernels, read
 * asynchronously (WebGPU's `dataSync` needs a 2-D canvas Deno lacks).
 */
async function viaEngine(
  c: Case,
  d: CaseData,
): Promise<[Float32Array, Float32Array]> {
  const [dw, dx] = tf.tidy(() => {
    const x = tf.tensor4d(d.x, c.x);
    const filter = tf.tensor4d(d.filter, c.filter);
    const dy = tf.tensor4d(d.dy, d.dyShape);
    return [
      tf.engine().runKernel(
        tf.Conv2DBackpropFilter,
        { x, dy },
        attrsOf(c),
      ) as tf.Tensor,
      tf.engine().runKernel(
        tf.Conv2DBackpropInput,
        { dy, filter },
        attrsOf(c),
      ) as tf.Tensor,
    ];
  });
  try {
    assertEquals(dw.shape, c.filter);
    assertEquals(dx.shape, c.x);
    return [
      await dw.data() as Float32Array,
      await dx.data() as Float32Array,
    ];
  } finally {
    tf.dispose([dw, dx]);
  }
}

/** Both gradients through our kernel functions called directly. */
function viaConfigs(
  c: Case,
  d: CaseData,
  maxColsFloats: number,
): [Float32Array, Float32Array] {
  const [filterConfig, inputConfig] = convGradKernelConfigs(tf.getBackend(), {
    maxColsFloats,
  });
  const backend = tf.backend();
  const x = tf.tensor4d(d.x, c.x);
  const filter = tf.tensor4d(d.filter, c.filter);
  const dy = tf.tensor4d(d.dy, d.dyShape);
  const read = (info: tf.TensorInfo): Float32Array => {
    const values = backend.readSync(info.dataId) as Float32Array;
    backend.disposeData(info.dataId);
    return Float32Array.from(values);
  };
  const dw = read(
    filterConfig.kernelFunc({
      inputs: { x, dy },
      backend,
      attrs: attrsOf(c),
    }) as tf.TensorInfo,
  );
  const dx = read(
    inputConfig.kernelFunc({
      inputs: { dy, filter },
      backend,
      attrs: attrsOf(c),
    }) as tf.TensorInfo,
  );
  tf.dispose([x, filter, dy]);
  return [dw, dx];
}

await useBackend("cpu");
const DATA = CASES.map((c, i) => caseData(c, 100 + i));
// The reference: tfjs-backend-cpu's own (naive-loop) gradient kernels.
const REFERENCE = await Promise.all(CASES.map((c, i) => viaEngine(c, DATA[i])));
const available = async (name: "wasm" | "webgpu"): Promise<boolean> => {
  try {
    await useBackend(name);
    return true;
  } catch {
    return false;
  } finally {
    await useBackend("cpu");
  }
};
const wasmMissing = !(await available("wasm"));
const webgpuMissing = !(await available("webgpu"));

function label(c: Case): string {
  return `x ${c.x} filter ${c.filter} strides ${c.strides} pad ${
    JSON.stringify(c.pad)
  }`;
}

for (
  const [name, missing] of [["wasm", wasmMissing], [
    "webgpu",
    webgpuMissing,
  ]] as const
) {
  Deno.test({
    name: `${name} Conv2DBackpropFilter/Input match the CPU reference`,
    ignore: ignoreUnless(!missing, name),
    fn: async () => {
      await useBackend(name);
      try {
        for (const [i, c] of CASES.entries()) {
          const [dw, dx] = await viaEngine(c, DATA[i]);
          assertClose(dw, REFERENCE[i][0], {
            ...TOLERANCE,
            message: `dW, ${label(c)}`,
          });
          assertClose(dx, REFERENCE[i][1], {
            ...TOLERANCE,
            message: `dx, ${label(c)}`,
          });
        }
      } finally {
        await useBackend("cpu");
      }
    },
  });
}

Deno.test({
  name: "convGradKernelConfigs() splits the batch into chunks on wasm",
  ignore: ignoreUnless(!wasmMissing, "wasm"),
  fn: async () => {
    await useBackend("wasm");
    try {
      const before = (tf.backend() as unknown as { numDataIds(): number })
        .numDataIds();
      CASES.forEach((c, i) => {
        // 1 float per chunk forces one image per chunk.
        const [dw, dx] = viaConfigs(c, DATA[i], 1);
        assertClose(dw, REFERENCE[i][0], { ...TOLERANCE, message: label(c) });
        assertClose(dx, REFERENCE[i][1], { ...TOLERANCE, message: label(c) });
      });
      const after = (tf.backend() as unknown as { numDataIds(): number })
        .numDataIds();
      assertEquals(after, before, "wasm buffers left behind");
    } finally {
      await useBackend("cpu");
    }
  },
});

Deno.test("convGradKernelConfigs() runs on the CPU backend's buffers too", () => {
  CASES.forEach((c, i) => {
    const [dw, dx] = viaConfigs(c, DATA[i], 1 << 24);
    assertClose(dw, REFERENCE[i][0], { ...TOLERANCE, message: label(c) });
    assertClose(dx, REFERENCE[i][1], { ...TOLERANCE, message: label(c) });
  });
});

Deno.test({
  name: "wasm gradients of pad + valid conv + BN-like loss match the CPU",
  ignore: ignoreUnless(!wasmMissing, "wasm"),
  fn: async () => {
    // The models' convolution: tf.pad (symmetric, like PyTorch padding=1),
    // then a 'valid' conv, stride 1 and 2.
    const rng = new Rng(7);
    const xs = randomArray(rng, [2, 6, 6, 4]);
    const ws = randomArray(rng, [3, 3, 4, 5]);
    const grads = (stride: number): Float32Array[] =>
      tf.tidy(() => {
        const f = (x: tf.Tensor, w: tf.Tensor): tf.Scalar => {
          const padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]);
          const y = tf.conv2d(
            padded as tf.Tensor4D,
            w as tf.Tensor4D,
            stride,
            "valid",
          );
          const m = tf.moments(y, [0, 1, 2]);
          return tf.sum(tf.square(tf.relu(tf.sub(y, m.mean))));
        };
        const [gx, gw] = tf.grads(f)([
          tf.tensor4d(xs, [2, 6, 6, 4]),
          tf.tensor4d(ws, [3, 3, 4, 5]),
        ]);
        return [gx.dataSync() as Float32Array, gw.dataSync() as Float32Array];
      });
    const expected = [grads(1), grads(2)];
    await useBackend("wasm");
    try {
      for (const [i, stride] of [1, 2].entries()) {
        const [gx, gw] = grads(stride);
        assertClose(gx, expected[i][0], { rtol: 1e-4, atol: 1e-4 });
        assertClose(gw, expected[i][1], { rtol: 1e-4, atol: 1e-4 });
      }
    } finally {
      await useBackend("cpu");
    }
  },
});

Deno.test("convGradKernelConfigs() rejects NCHW, dilation and bad options", () => {
  const [filterConfig] = convGradKernelConfigs("cpu");
  const x = tf.zeros([1, 4, 4, 2]);
  const dy = tf.zeros([1, 4, 4, 3]);
  try {
    const run = (attrs: Record<string, unknown>) =>
      filterConfig.kernelFunc({
        inputs: { x, dy },
        backend: tf.backend(),
        attrs: {
          strides: 1,
          pad: "same",
          filterShape: [3, 3, 2, 3],
          ...attrs,
        } as tf.NamedAttrMap,
      });
    assertThrows(() => run({ dataFormat: "NCHW" }), TypeError, "NHWC");
    assertThrows(() => run({ dilations: 2 }), RangeError, "dilations 1");
    assertThrows(
      () => convGradKernelConfigs("cpu", { maxColsFloats: 0 }),
      RangeError,
      "maxColsFloats",
    );
  } finally {
    tf.dispose([x, dy]);
  }
});

Deno.test("useBackend('cpu-fast') matches the CPU reference and keeps cpu untouched", async () => {
  assertEquals((await useBackend("cpu-fast")).name, "cpu-fast");
  try {
    for (const [i, c] of CASES.entries()) {
      const [dw, dx] = await viaEngine(c, DATA[i]);
      assertClose(dw, REFERENCE[i][0], { ...TOLERANCE, message: label(c) });
      assertClose(dx, REFERENCE[i][1], { ...TOLERANCE, message: label(c) });
    }
  } finally {
    await useBackend("cpu");
  }
  const cpuFilter = tf.getKernel(tf.Conv2DBackpropFilter, "cpu");
  const fastFilter = tf.getKernel(tf.Conv2DBackpropFilter, "cpu-fast");
  assertTrue(cpuFilter !== undefined && fastFilter !== undefined);
  assertTrue(cpuFilter.kernelFunc !== fastFilter.kernelFunc);
});
