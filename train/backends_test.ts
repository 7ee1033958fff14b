// The library members (models, losses, augment) run unchanged on whichever
// backend the caller picks: the same forward + VICReg loss + gradients on
// every backend that loads here, compared with the CPU reference.
import * as tf from "@tensorflow/tfjs-core";
import {
  type BackendName,
  getBackend,
  Rng,
  useBackend,
} from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  ignoreUnless,
} from "@scaling-vicreg/backend/testing";
import { TrainTransform } from "@scaling-vicreg/augment";
import { proceduralDataset } from "@scaling-vicreg/data";
import { vicregLoss } from "@scaling-vicreg/losses";
import { createProjector, createResNet } from "@scaling-vicreg/models";

interface StepValues {
  loss: number;
  embedding: Float32Array;
  gradNorms: number[];
}

async function step(): Promise<StepValues> {
  const source = proceduralDataset({ n: 8, size: 24, seed: 3 });
  const images = await Promise.all(
    Array.from({ length: 8 }, (_, i) => source.get(i)),
  );
  const views = new TrainTransform({ size: 16 }).apply(images, new Rng(1));
  const backbone = createResNet("tiny", new Rng(2), { stem: "cifar" });
  const projector = createProjector(backbone.embeddingDim, "32-16", new Rng(3));
  const vars = [
    ...backbone.parameters().values(),
    ...projector.parameters().values(),
  ];
  const { value, grads } = tf.variableGrads(() => {
    const za = projector.forward(
      backbone.forward(views.view1, { training: true }).embedding,
      { training: true },
    );
    const zb = projector.forward(
      backbone.forward(views.view2, { training: true }).embedding,
      { training: true },
    );
    return vicregLoss(za, zb).loss;
  }, vars);
  const embedding = tf.tidy(() =>
    backbone.forward(views.view1, { training: false }).embedding
  );
  const norms = tf.stack(vars.map((v) => tf.norm(grads[v.name])));
  const result = {
    loss: (await value.data())[0],
    embedding: (await embedding.data()) as Float32Array,
    gradNorms: Array.from(await norms.data()),
  };
  tf.dispose([
    value,
    embedding,
    norms,
    views.view1,
    views.view2,
    ...Object.values(grads),
  ]);
  backbone.dispose();
  projector.dispose();
  return result;
}

async function loads(name: BackendName): Promise<boolean> {
  try {
    await getBackend(name).init();
    return true;
  } catch {
    return false;
  }
}

await useBackend("cpu");
const reference = await step();

for (const name of ["cpu-fast", "wasm", "blas", "native", "webgpu"] as const) {
  const available = await loads(name);
  Deno.test({
    name:
      `library members give the CPU reference's loss, features and gradients on ${name}`,
    ignore: ignoreUnless(available, name),
    async fn() {
      await useBackend(name);
      assertEquals((await import("@tensorflow/tfjs-core")).getBackend(), name);
      const got = await step();
      assertClose(got.loss, reference.loss, { rtol: 1e-4 });
      assertClose(got.embedding, reference.embedding, {
        rtol: 1e-3,
        atol: 1e-4,
      });
      assertClose(got.gradNorms, reference.gradNorms, {
        rtol: 2e-3,
        atol: 1e-5,
      });
      await useBackend("cpu");
    },
  });
}
await useBackend("cpu");
