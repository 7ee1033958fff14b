import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "./backend.ts";
import { profileKernels } from "./kernel_profile.ts";
import {
  assertEquals,
  assertTrue,
  ignoreUnless,
  loadableBackends,
} from "./testing.ts";

Deno.test("profileKernels() counts each kernel the engine runs and puts the kernels back", async () => {
  await useBackend("cpu");
  const before = tf.getKernel("Add", "cpu")!.kernelFunc;
  const profiler = profileKernels();
  try {
    assertTrue(tf.getKernel("Add", "cpu")!.kernelFunc !== before);
    tf.tidy(() => {
      const a = tf.ones([4]);
      tf.add(tf.add(a, a), tf.mul(a, a));
    });
    const p = profiler.snapshot();
    assertEquals(p.backend, "cpu");
    assertEquals(p.kernels["Add"].calls, 2);
    assertEquals(p.kernels["Multiply"].calls, 1);
    assertTrue(p.kernels["Add"].selfMs >= 0);
    assertTrue(p.kernels["Add"].totalMs >= p.kernels["Add"].selfMs);
    profiler.reset();
    assertEquals(profiler.snapshot().kernels, {});
  } finally {
    profiler.dispose();
  }
  assertTrue(tf.getKernel("Add", "cpu")!.kernelFunc === before);
  // After dispose nothing is counted any more.
  tf.dispose(tf.add(tf.ones([1]), tf.ones([1])));
  assertEquals(profiler.snapshot().kernels, {});
});

Deno.test("profileKernels() charges a kernel run inside another to the inner one", async () => {
  await useBackend("cpu");
  const name = "_ProfileTestOuter";
  tf.registerKernel({
    kernelName: name,
    backendName: "cpu",
    kernelFunc: ({ inputs, backend }) => {
      const add = tf.getKernel("Add", "cpu")!;
      const start = performance.now();
      while (performance.now() - start < 5) {
        /* the outer kernel's own work */
      }
      return add.kernelFunc({
        inputs: { a: inputs.x, b: inputs.x },
        backend,
        attrs: {},
      }) as tf.TensorInfo;
    },
  });
  const profiler = profileKernels();
  try {
    const x = tf.ones([2]);
    tf.dispose([tf.engine().runKernel(name, { x }) as tf.Tensor, x]);
    const p = profiler.snapshot();
    const outer = p.kernels[name];
    const inner = p.kernels["Add"];
    assertEquals([outer.calls, inner.calls], [1, 1]);
    assertTrue(outer.selfMs >= 5, `outer self ${outer.selfMs}`);
    const sum = outer.selfMs + inner.totalMs;
    assertTrue(
      Math.abs(sum - outer.totalMs) < 1e-6,
      `${sum} vs ${outer.totalMs}`,
    );
  } finally {
    profiler.dispose();
    tf.unregisterKernel(name, "cpu");
  }
});

const [[, blasLoads]] = await loadableBackends(["blas"]);
Deno.test({
  name:
    "profileKernels() on blas counts the native calls a kernel makes and the kind of each oneDNN primitive",
  ignore: ignoreUnless(blasLoads, "blas"),
  async fn() {
    await useBackend("blas");
    const { registerBlasBackend } = await import("./kernels/blas_backend.ts");
    const { dnnl } = await registerBlasBackend();
    const profiler = profileKernels();
    try {
      tf.tidy(() => {
        tf.matMul(tf.ones([8, 8]), tf.ones([8, 8])).dataSync();
        tf.conv2d(
          tf.ones([2, 8, 8, 16]) as tf.Tensor4D,
          tf.ones([3, 3, 16, 16]) as tf.Tensor4D,
          1,
          "same",
        ).dataSync();
      });
      const p = profiler.snapshot();
      assertEquals(p.native["cblas_sgemm"]?.calls, 1);
      assertTrue(p.kernels["BatchMatMul"].nativeCalls >= 1);
      if (dnnl !== undefined) {
        assertTrue(
          (p.native["dnnl_primitive_execute:convolution"]?.calls ?? 0) >= 1,
          JSON.stringify(Object.keys(p.native)),
        );
        assertTrue(p.kernels["Conv2D"].nativeMs > 0);
      }
    } finally {
      profiler.dispose();
      await useBackend("cpu");
    }
  },
});
