// Forward and forward+backward timings of the backbones.
//   deno bench -A models/resnet_bench.ts
// VICREG_BACKEND picks the backend (default cpu). The default set is small
// enough for the pure-JS CPU backend; VICREG_BENCH_FULL=1 runs every
// architecture at 32 px and 96 px (the grid; needs a fast backend).
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, Rng, useBackend } from "@scaling-vicreg/backend";
import { createResNet, RESNET_ARCHS, type ResNetArch } from "./resnet.ts";

const backend = (Deno.env.get("VICREG_BACKEND") ?? "cpu") as BackendName;
const full = Deno.env.get("VICREG_BENCH_FULL") === "1";
await useBackend(backend);

// [arch, image size, batch, also forward+backward]
const CASES: [ResNetArch, number, number, boolean][] = full
  ? RESNET_ARCHS.flatMap((arch) =>
    [32, 96].map((size): [ResNetArch, number, number, boolean] => [
      arch,
      size,
      8,
      true,
    ])
  )
  : [
    ["tiny", 32, 2, true],
    ["resnet18", 32, 2, false],
    ["resnet50", 32, 2, false],
  ];

for (const [arch, size, batch, backward] of CASES) {
  const net = createResNet(arch, new Rng(0));
  const x = tf.randomNormal([batch, size, size, 3]) as tf.Tensor4D;
  const params = [...net.parameters().values()];
  const group = `${arch} ${size}px batch ${batch} (${backend})`;
  Deno.bench({
    name: `${arch} forward ${size}px`,
    group,
    baseline: true,
    n: 3,
    warmup: 1,
    fn: async () => {
      const { embedding } = net.forward(x);
      await embedding.data();
      embedding.dispose();
    },
  });
  if (!backward) continue;
  Deno.bench({
    name: `${arch} forward+backward ${size}px`,
    group,
    n: 2,
    warmup: 1,
    fn: async () => {
      const { value, grads } = tf.variableGrads(
        () => tf.sum(net.forward(x, { training: true }).embedding) as tf.Scalar,
        params,
      );
      await value.data();
      tf.dispose([value, ...Object.values(grads)]);
    },
  });
}
