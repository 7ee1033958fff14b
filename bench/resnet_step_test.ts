import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { resnetParameterCount } from "@scaling-vicreg/models";
import {
  makeStepModel,
  STEP_CASES,
  type StepCase,
  trainStep,
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
  const size = (vs: tf.Variable[]) => vs.reduce((n, v) => n + v.size, 0);
  // ResNet-18 without fc, + Linear(512, 512) with bias, BN(512), Linear(512, 512).
  assertEquals(
    size(model.variables),
    resnetParameterCount("resnet18", { stem: "cifar" }) + 512 * 512 + 512 +
      2 * 512 + 512 * 512,
  );
  model.dispose();
});

Deno.test("trainStep() updates every variable and leaks no tensor", async () => {
  const model = makeStepModel(spec, new Rng(0));
  const [x, y] = views();
  const before = model.variables.map((v) => v.dataSync().slice());
  await assertNoLeak(async () => {
    const loss = trainStep(model, [x, y], { lr: 0.1 });
    assertTrue(Number.isFinite((await loss.data())[0]));
    loss.dispose();
  });
  const names = [
    ...[...model.backbone.parameters().keys()].map((k) => `backbone.${k}`),
    ...[...model.projector.parameters().keys()].map((k) => `projector.${k}`),
  ];
  const unchanged = names.filter((_, i) =>
    model.variables[i].dataSync().every((value, j) => value === before[i][j])
  );
  // Zero-initialised residual γ (bn2): the residual branch before it gets no
  // gradient on the first step; everything else moves.
  assertEquals(
    unchanged,
    names.filter((n) => /^backbone\.layer\d\.\d\.(conv1|bn1|conv2)\./.test(n)),
  );
  assertThrows(() => trainStep(model, [x, y], { lr: 0 }), RangeError, "lr");
  tf.dispose([x, y]);
  model.dispose();
});

for (
  const [label, stepSpec] of [
    ["global loss", spec],
    ["local loss", { ...spec, localProjector: [16, 8], localAlpha: 0.5 }],
  ] as [string, StepCase][]
) {
  Deno.test(`trainStep() mixed and view by view give the joint step's loss, update and running statistics (${label})`, async () => {
    const [x, y] = views();
    const after = async (mode: "joint" | "mixed" | "view-by-view") => {
      const model = makeStepModel(stepSpec, new Rng(0));
      const loss = trainStep(model, [x, y], { lr: 0.1, mode });
      const values = [
        await loss.data(),
        ...model.variables.map((v) => v.dataSync()),
        ...[...model.backbone.buffers().values()].map((v) => v.dataSync()),
      ];
      loss.dispose();
      model.dispose();
      return values;
    };
    const joint = await after("joint");
    for (const mode of ["mixed", "view-by-view"] as const) {
      await assertNoLeak(async () => {
        const split = await after(mode);
        joint.forEach((v, i) =>
          assertClose(split[i], v, {
            rtol: 1e-5,
            atol: 1e-7,
            message: `${mode} #${i}`,
          })
        );
      });
    }
    tf.dispose([x, y]);
  });
}

Deno.test("trainStep() with a local projector adds α × the cells' VICReg loss", async () => {
  const [x, y] = views();
  const lossOf = async (s: StepCase) => {
    const model = makeStepModel(s, new Rng(0));
    const loss = trainStep(model, [x, y], { lr: 0.1 });
    const value = (await loss.data())[0];
    loss.dispose();
    model.dispose();
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
