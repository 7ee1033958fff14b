import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import {
  createResNet,
  type ResNetArch,
  type ResNetOptions,
  resnetParameterCount,
  resnetParameterShapes,
} from "./resnet.ts";
import { countParameters } from "./module.ts";
import { fromTorchvision, loadStateDict } from "./weights.ts";
import { readFixture, withPrefix } from "./_fixtures_test_util.ts";
import type { SafeTensor } from "@scaling-vicreg/backend/safetensors";

await useBackend("cpu");

const counts = JSON.parse(
  Deno.readTextFileSync(
    new URL("./testdata/parameter_counts.json", import.meta.url),
  ),
);

/**
 * |a − e| ≤ rtol·|e| + rtol/10·max|e| element-wise: relative error, with an
 * absolute floor tied to the tensor's scale for elements near zero (PyTorch's
 * own float32 output differs from its float64 one by ~1e-6 of the scale).
 */
function assertScaledClose(
  actual: tf.Tensor,
  expected: SafeTensor,
  message: string,
  rtol = 1e-4,
): void {
  const e = expected.data as Float32Array;
  const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assertClose(actual, e, { rtol, atol: (rtol / 10) * scale + 1e-7, message });
}

/** ‖a − e‖₂ / ‖e‖₂. */
function relativeNormError(actual: tf.Tensor, expected: SafeTensor): number {
  const a = actual.dataSync();
  const e = expected.data as Float32Array;
  let num = 0;
  let den = 0;
  for (let i = 0; i < e.length; i++) {
    num += (a[i] - e[i]) ** 2;
    den += e[i] ** 2;
  }
  return Math.sqrt(num / den);
}

interface ParityCase {
  fixture: string;
  arch: ResNetArch;
  options: ResNetOptions;
}

// torchvision's ResNet rebuilt with reduced widths (make_model_fixtures.py).
const CASES: ParityCase[] = [
  {
    fixture: "resnet18_w4",
    arch: "resnet18",
    options: { widthMultiplier: 1 / 16 },
  },
  {
    fixture: "resnet50_w2",
    arch: "resnet50",
    options: { widthMultiplier: 1 / 32 },
  },
  {
    fixture: "tiny_w4_cifar",
    arch: "tiny",
    options: { widthMultiplier: 0.25 },
  },
];

for (const c of CASES) {
  Deno.test(`ResNet.forward() matches torchvision in eval mode (${c.fixture})`, () => {
    const net = createResNet(c.arch, new Rng(0), c.options);
    const io = readFixture(`${c.fixture}.io.safetensors`);
    try {
      loadStateDict(
        net,
        fromTorchvision(readFixture(`${c.fixture}.weights.safetensors`)),
      );
      tf.tidy(() => {
        const x = tf.tensor4d(
          io.input.data as Float32Array,
          io.input.shape as [number, number, number, number],
        );
        const { embedding, featureMap } = net.forward(x, {
          returnFeatureMap: true,
        });
        assertEquals(embedding.shape, io["eval.embedding"].shape);
        assertEquals(featureMap?.shape, io["eval.feature_map"].shape);
        assertScaledClose(embedding, io["eval.embedding"], "embedding");
        assertScaledClose(featureMap!, io["eval.feature_map"], "feature map");
      });
    } finally {
      net.dispose();
    }
  });

  Deno.test(`ResNet.forward() matches torchvision in train mode: output, running stats, gradients (${c.fixture})`, () => {
    const net = createResNet(c.arch, new Rng(0), c.options);
    const io = readFixture(`${c.fixture}.io.safetensors`);
    try {
      loadStateDict(
        net,
        fromTorchvision(readFixture(`${c.fixture}.weights.safetensors`)),
      );
      const params = net.parameters();
      const x = tf.tensor4d(
        io.input.data as Float32Array,
        io.input.shape as [number, number, number, number],
      );
      const r = tf.tensor(io.r.data as Float32Array, io.r.shape);
      let embedding: tf.Tensor | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const out = net.forward(x, { training: true });
        embedding = tf.keep(out.embedding);
        return tf.sum(tf.mul(out.embedding, r)) as tf.Scalar;
      }, [...params.values()]);
      assertScaledClose(embedding!, io["train.embedding"], "embedding");
      const after = withPrefix(io, "after.");
      for (const [name, buffer] of net.buffers()) {
        assertScaledClose(buffer, after[name], name);
      }
      const expected = fromTorchvision(withPrefix(io, "grad."));
      for (const [name, variable] of params) {
        const g = grads[variable.name];
        assertEquals(g.shape, expected[name].shape, name);
        // Gradients through train-mode BatchNorm over few elements are
        // ill-conditioned: on a width-2 ResNet-50 PyTorch's own float32
        // gradients differ from its float64 ones by up to 25% element-wise
        // and 4e-4 in relative L2 norm, so compare norms (a wrong layer or
        // transpose gives errors of order 1).
        const err = relativeNormError(g, expected[name]);
        assertTrue(err < 2e-3, `grad ${name}: relative L2 error ${err}`);
      }
      tf.dispose([x, r, value, embedding!, ...Object.values(grads)]);
    } finally {
      net.dispose();
    }
  });
}

Deno.test("resnetParameterCount() equals torchvision's counts without fc, and VICReg's resnet50x2", () => {
  assertEquals(resnetParameterCount("resnet18"), 11_176_512);
  assertEquals(counts.resnet18.without_fc, 11_176_512);
  assertEquals(counts.resnet18.with_fc, 11_689_512);
  assertEquals(resnetParameterCount("resnet34"), counts.resnet34.without_fc);
  assertEquals(resnetParameterCount("resnet50"), 23_508_032);
  assertEquals(counts.resnet50.with_fc, 25_557_032);
  assertEquals(resnetParameterCount("resnet50"), counts.resnet50.without_fc);
  assertEquals(
    resnetParameterCount("resnet50x2"),
    counts.resnet50x2.without_fc,
  );
  assertEquals(counts.resnet50x2.without_fc, 93_907_072);
});

Deno.test("resnetParameterShapes() lists exactly the built network's variables", () => {
  for (
    const [arch, options] of [
      ["tiny", {}],
      ["resnet50", { widthMultiplier: 1 / 32 }],
      ["resnet18", { widthMultiplier: 1 / 16, stem: "cifar" }],
    ] as [ResNetArch, ResNetOptions][]
  ) {
    const net = createResNet(arch, new Rng(0), options);
    const shapes = resnetParameterShapes(arch, options);
    const built = [
      ...[...net.parameters()].map(([n, v]) => [n, v.shape, true]),
      ...[...net.buffers()].map(([n, v]) => [n, v.shape, false]),
    ];
    const listed = [
      ...shapes.filter((s) => s.trainable),
      ...shapes.filter((s) => !s.trainable),
    ].map((s) => [s.name, s.shape, s.trainable]);
    assertEquals(built, listed, arch);
    assertEquals(countParameters(net), resnetParameterCount(arch, options));
    net.dispose();
  }
});

Deno.test("createResNet() sets embeddingDim and stage widths per architecture", () => {
  const dims: [ResNetArch, number, string, number[]][] = [
    ["resnet18", 512, "layer4.1.conv2.weight", [3, 3, 512, 512]],
    ["resnet34", 512, "layer3.5.conv2.weight", [3, 3, 256, 256]],
    ["resnet50", 2048, "layer1.0.conv2.weight", [3, 3, 64, 64]],
    ["resnet50x2", 4096, "conv1.weight", [7, 7, 3, 128]],
    ["tiny", 128, "conv1.weight", [3, 3, 3, 16]],
  ];
  for (const [arch, embedding, name, shape] of dims) {
    const shapes = resnetParameterShapes(arch);
    assertEquals(shapes.find((s) => s.name === name)?.shape, shape, arch);
    const last = shapes.filter((s) => s.name.endsWith("running_mean")).at(-1);
    assertEquals(last?.shape, [embedding], arch);
  }
  const x2 = resnetParameterShapes("resnet50x2");
  assertEquals(
    x2.find((s) => s.name === "layer4.2.conv3.weight")?.shape,
    [1, 1, 1024, 4096],
  );
  assertEquals(
    x2.find((s) => s.name === "layer2.0.downsample.0.weight")?.shape,
    [1, 1, 512, 1024],
  );
});

Deno.test("createResNet() initialises conv weights Kaiming-normal (fan-out) and zero-inits the last BN of each block", () => {
  const net = createResNet("tiny", new Rng(3));
  const p = net.parameters();
  // layer3.0.conv1: [3, 3, 32, 64], std = sqrt(2 / (64 * 9)).
  const w = Array.from(p.get("layer3.0.conv1.weight")!.dataSync());
  const mean = w.reduce((a, b) => a + b, 0) / w.length;
  const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
  assertClose(std, Math.sqrt(2 / (64 * 9)), { rtol: 0.05 });
  assertClose(mean, 0, { atol: 0.005 });
  assertEquals(
    Array.from(p.get("layer1.0.bn2.weight")!.dataSync()),
    new Array(16).fill(0),
  );
  assertEquals(
    Array.from(p.get("layer1.0.bn1.weight")!.dataSync()),
    new Array(16).fill(1),
  );
  assertEquals(
    Array.from(p.get("layer1.0.bn1.bias")!.dataSync()),
    new Array(16).fill(0),
  );
  assertEquals(
    Array.from(p.get("layer2.0.downsample.1.weight")!.dataSync()),
    new Array(32).fill(1),
  );
  net.dispose();
  const plain = createResNet("tiny", new Rng(3), { zeroInitResidual: false });
  assertEquals(
    Array.from(plain.parameters().get("layer1.0.bn2.weight")!.dataSync()),
    new Array(16).fill(1),
  );
  plain.dispose();
});

Deno.test("createResNet() gives the same weights for the same seed", () => {
  const a = createResNet("tiny", new Rng(7));
  const b = createResNet("tiny", new Rng(7));
  assertClose(
    a.parameters().get("layer4.0.conv2.weight")!,
    b.parameters().get("layer4.0.conv2.weight")!,
    { rtol: 0, atol: 0 },
  );
  a.dispose();
  b.dispose();
});

Deno.test("ResNet.forward() handles odd sizes with PyTorch's output shapes", () => {
  const net = createResNet("resnet18", new Rng(0), { widthMultiplier: 1 / 16 });
  tf.tidy(() => {
    // 33 -> conv 7/2 p3: 17 -> maxpool 3/2 p1: 9 -> 9, 5, 3, 2.
    const { featureMap } = net.forward(tf.zeros([1, 33, 33, 3]), {
      returnFeatureMap: true,
    });
    assertEquals(featureMap?.shape, [1, 2, 2, 32]);
  });
  net.dispose();
});

Deno.test("ResNet.forward() rejects inputs that are not [N, H, W, 3]", () => {
  const net = createResNet("tiny", new Rng(0));
  assertThrows(
    () => net.forward(tf.zeros([1, 8, 8, 1]) as tf.Tensor4D),
    TypeError,
    "[N, H, W, 3]",
  );
  net.dispose();
});

Deno.test("createResNet() rejects unknown architectures and bad widths", () => {
  assertThrows(
    () => createResNet("resnet99" as ResNetArch, new Rng(0)),
    RangeError,
    "resnet99",
  );
  assertThrows(
    () => createResNet("tiny", new Rng(0), { widthMultiplier: 0 }),
    RangeError,
    "widthMultiplier",
  );
});

Deno.test("ResNet.forward() leaks no tensors in eval, train and variableGrads", async () => {
  const net = createResNet("tiny", new Rng(0), { widthMultiplier: 0.25 });
  const x = tf.randomNormal([2, 8, 8, 3]) as tf.Tensor4D;
  await assertNoLeak(() => net.forward(x, { returnFeatureMap: true }));
  await assertNoLeak(() => net.forward(x, { training: true }));
  await assertNoLeak(() => {
    const before = net.buffers().get("bn1.running_mean")!.dataSync()[0];
    const { value, grads } = tf.variableGrads(
      () => tf.sum(net.forward(x, { training: true }).embedding) as tf.Scalar,
    );
    // Only trainable variables get gradients; buffers were updated.
    assertEquals(Object.keys(grads).length, net.parameters().size);
    assertTrue(before !== net.buffers().get("bn1.running_mean")!.dataSync()[0]);
    return [value, grads];
  });
  x.dispose();
  net.dispose();
});

for (
  const [arch, options] of [
    ["tiny", { widthMultiplier: 0.5 }],
    ["resnet50", { widthMultiplier: 0.125, stem: "imagenet" }],
  ] as [ResNetArch, ResNetOptions][]
) {
  Deno.test(`ResNet.forwardCheckpointed() gives forward's outputs, running statistics and autodiff gradients (${arch})`, async () => {
    const make = () =>
      createResNet(arch, new Rng(1), { ...options, zeroInitResidual: false });
    const side = arch === "tiny" ? 8 : 32;
    const rng = new Rng(2);
    const random = (shape: number[]) =>
      tf.tensor(
        rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b)), 0, 1),
        shape,
      );
    const x = random([3, side, side, 3]) as tf.Tensor4D;
    // Reference: one tape through forward(), loss Σ embedding·dE + Σ map·dF.
    const ref = make();
    const shape = ref.forward(x, { returnFeatureMap: true });
    const dE = random(shape.embedding.shape);
    const dF = random(shape.featureMap!.shape);
    tf.dispose([shape.embedding, shape.featureMap!]);
    const params = ref.parameters();
    let refEmbedding: tf.Tensor | undefined;
    const expected = tf.variableGrads(() => {
      const out = ref.forward(x, { training: true, returnFeatureMap: true });
      refEmbedding = tf.keep(out.embedding);
      return tf.add(
        tf.sum(tf.mul(out.embedding, dE)),
        tf.sum(tf.mul(out.featureMap!, dF)),
      ) as tf.Scalar;
    }, [...params.values()]);
    const net = make();
    await assertNoLeak(() => {
      const run = net.forwardCheckpointed(x, {
        training: true,
        returnFeatureMap: true,
      });
      assertClose(run.embedding, refEmbedding!, { rtol: 1e-5, atol: 1e-6 });
      const grads = run.backward({
        embedding: dE as tf.Tensor2D,
        featureMap: dF as tf.Tensor4D,
      });
      run.dispose();
      assertEquals([...grads.keys()], [...params.keys()]);
      for (const [name, v] of params) {
        assertClose(grads.get(name)!, expected.grads[v.name], {
          rtol: 1e-5,
          atol: 1e-6,
          message: name,
        });
      }
      tf.dispose([...grads.values()]);
    });
    // The forward pass moved the running statistics once, backward did not.
    const refBuffers = ref.buffers();
    for (const [name, b] of net.buffers()) {
      assertClose(b, refBuffers.get(name)!, { rtol: 1e-5, atol: 1e-7 });
    }
    tf.dispose([
      x,
      dE,
      dF,
      refEmbedding!,
      expected.value,
      ...Object.values(expected.grads),
    ]);
    ref.dispose();
    net.dispose();
  });
}

Deno.test("ResNet.forward() in eval mode: folding BatchNorm into the convs changes only rounding", () => {
  const net = createResNet("tiny", new Rng(4), { stem: "imagenet" });
  const rng = new Rng(5);
  const x = tf.tensor4d(
    rng.fillNormal(new Float32Array(3 * 24 * 24 * 3), 0.5, 2),
    [3, 24, 24, 3],
  );
  // Two training passes move the running statistics away from (0, 1).
  for (let i = 0; i < 2; i++) {
    tf.dispose(net.forward(x, { training: true }).embedding);
  }
  const folded = net.forward(x, { returnFeatureMap: true });
  const plain = net.forward(x, {
    returnFeatureMap: true,
    foldBatchNorm: false,
  });
  assertClose(folded.embedding, plain.embedding, { rtol: 1e-5, atol: 1e-5 });
  assertClose(folded.featureMap!, plain.featureMap!, {
    rtol: 1e-5,
    atol: 1e-5,
  });
  tf.dispose([
    x,
    folded.embedding,
    folded.featureMap!,
    plain.embedding,
    plain.featureMap!,
  ]);
  net.dispose();
});
