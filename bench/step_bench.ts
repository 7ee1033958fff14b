// `deno task bench`: kernel and training-step timings on the wasm backend and,
// where it loads (OpenBLAS; oneDNN for its convolutions and BatchNorm), on
// blas (the CPU backend's naive conv gradients take seconds per step; see
// `deno task bench:compare --backends cpu`).
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, Rng, useBackend } from "@scaling-vicreg/backend";
import { loadableBackends } from "@scaling-vicreg/backend/testing";
import { BatchNorm } from "@scaling-vicreg/models";
import { benchStep, makeStepRunner, STEP_CASES } from "./resnet_step.ts";

const backends = (await loadableBackends(["wasm", "blas"], "wasm"))
  .filter(([, loads]) => loads).map(([name]) => name);

/** Registers the benches of one backend, on tensors made there. */
async function benches(backend: BackendName): Promise<void> {
  await useBackend(backend);
  const on = () => tf.setBackend(backend);
  const spec = STEP_CASES["tiny-16px-b16"];
  const runner = makeStepRunner(spec, new Rng(0));
  const views = [0, 1].map(() =>
    tf.randomNormal([spec.batch, spec.imageSize, spec.imageSize, 3])
  ) as tf.Tensor4D[];

  Deno.bench({
    name: `${backend} VICReg step, ${spec.name}`,
    group: `VICReg step ${spec.name}`,
    baseline: backend === "wasm",
    n: 10,
    warmup: 2,
    async fn() {
      await on();
      const loss = benchStep(runner, [views[0], views[1]], 0.01);
      await loss.data();
      loss.dispose();
    },
  });

  // One ResNet-18 stage-1 conv (3x3, 64 -> 64, 32 px, batch 16): forward and
  // both gradients, the three kernels of a training step.
  const x = tf.randomNormal([16, 32, 32, 64]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 64, 64]) as tf.Tensor4D;
  const dy = tf.randomNormal([16, 32, 32, 64]) as tf.Tensor4D;
  const attrs = {
    strides: 1,
    pad: "same",
    dataFormat: "NHWC",
    dimRoundingMode: undefined,
  } as unknown as tf.NamedAttrMap;

  for (
    const [name, run] of [
      ["Conv2D", () => tf.conv2d(x, w, 1, "same")],
      [
        "Conv2DBackpropFilter",
        () =>
          tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
            ...attrs,
            filterShape: w.shape,
          }) as tf.Tensor,
      ],
      [
        "Conv2DBackpropInput",
        () =>
          tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: w }, {
            ...attrs,
            inputShape: x.shape,
          }) as tf.Tensor,
      ],
    ] as const
  ) {
    Deno.bench({
      name: `${backend} ${name} 16x32x32x64, 3x3x64x64`,
      group: `conv 3x3 64->64 32px b16 (${backend})`,
      baseline: name === "Conv2D",
      n: 10,
      warmup: 2,
      async fn() {
        await on();
        const y = run();
        await y.data();
        y.dispose();
      },
    });
  }

  // Training-mode BatchNorm + ReLU on the same activations, forward and
  // backward (the fused kernels on blas with oneDNN, tensor ops elsewhere).
  const bn = new BatchNorm(64);
  const grad = tf.grad((t: tf.Tensor) =>
    tf.sum(tf.mul(
      bn.forward(t, { training: true, relu: true, updateRunningStats: false }),
      dy,
    ))
  );
  Deno.bench({
    name: `${backend} BatchNorm + ReLU forward and backward, 16x32x32x64`,
    n: 10,
    warmup: 2,
    async fn() {
      await on();
      const g = grad(x);
      await g.data();
      g.dispose();
    },
  });
}

for (const backend of backends) await benches(backend);
