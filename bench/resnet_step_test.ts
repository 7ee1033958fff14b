import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { resnetParameterCount } from "@scaling-vicreg/models";
import {
  benchStep,
  makeStepModel,
  makeStepRunner,
  STEP_CASES,
  type StepCase,
} from "./resnet_step.ts";

await useBackend("cpu-fast");

const spec = { ...STEP_CASES["tiny-16px-b16"], batch: 4, imageSize: 8 };
const views = (): [tf.Tensor4D, tf.Tensor4D] => [
  tf.randomNormal([4, 8, 8, 3], 0, 1, "float32", 1),
  tf.randomNormal([4, 8, 8, 3], 0, 1, "float32", 2),
];

Deno.test("makeStepModel() builds the models' ResNet and projector of a case", () => {
  const model = makeStepModel(
    STEP_CASES["resnet18-cifar-32px-b64"],
    new Rng(0),
  );
  const size = [...model.parameters().values()].reduce(
    (n, v) => n + v.size,
    0,
  );
  // ResNet-18 without fc, + Linear(512, 512) with bias, BN(512), Linear(512, 512).
  assertEquals(
    size,
    resnetParameterCount("resnet18", { stem: "cifar" }) + 512 * 512 + 512 +
      2 * 512 + 512 * 512,
  );
  model.dispose();
});

Deno.test("benchStep() updates every parameter that has a gradient and leaks no tensor", async () => {
  const runner = makeStepRunner(spec, new Rng(0));
  const [x, y] = views();
  const params = runner.model.parameters();
  const before = [...params.values()].map((v) => v.dataSync().slice());
  const step = async () => {
    const loss = benchStep(runner, [x, y], 0.1);
    assertTrue(Number.isFinite((await loss.data())[0]));
    loss.dispose();
  };
  await step();
  const unchanged = [...params.keys()].filter((_, i) =>
    [...params.values()][i].dataSync().every((value, j) =>
      value === before[i][j]
    )
  );
  // Zero-initialised residual γ (bn2): the residual branch before it gets no
  // gradient on the first step; everything else moves.
  assertEquals(
    unchanged,
    [...params.keys()].filter((n) =>
      /^backbone\.layer\d\.\d\.(conv1|bn1|conv2)\./.test(n)
    ),
  );
  // The optimizer's state exists after the first step; later ones add none.
  await assertNoLeak(step);
  tf.dispose([x, y]);
  runner.optimizer.dispose();
  runner.model.dispose();
});

Deno.test("benchStep() with a local projector adds α × the cells' VICReg loss", async () => {
  const [x, y] = views();
  const lossOf = async (s: StepCase) => {
    const runner = makeStepRunner(s, new Rng(0));
    const loss = benchStep(runner, [x, y], 0.1);
    const value = (await loss.data())[0];
    loss.dispose();
    runner.optimizer.dispose();
    runner.model.dispose();
    return value;
  };
  const global = await lossOf(spec);
  const half = await lossOf({
    ...spec,
    localProjector: [16, 8],
    localAlpha: 0.5,
  });
  const one = await lossOf({ ...spec, localProjector: [16, 8], localAlpha: 1 });
  // The same backbone, projector and local projector: loss = g + α·l.
  assertTrue(half > global, `${half} > ${global}`);
  assertClose(one - global, 2 * (half - global), { rtol: 1e-4 });
  tf.dispose([x, y]);
});
