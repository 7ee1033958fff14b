import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertRejects,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { createResNet } from "./resnet.ts";
import { createProjector } from "./projector.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
} from "@scaling-vicreg/backend/safetensors";
import {
  fromTorchvision,
  loadStateDict,
  loadWeights,
  readStateDictData,
  saveWeights,
  stateDict,
  stateDictData,
  toTorchvision,
} from "./weights.ts";
import { readFixture } from "./_fixtures_test_util.ts";

await useBackend("cpu");

const fixturePath = (name: string): string =>
  new URL(`./testdata/${name}`, import.meta.url).pathname;

Deno.test("saveWeights() then loadWeights() restores identical outputs, running stats included", async () => {
  const dir = await Deno.makeTempDir();
  const a = createResNet("tiny", new Rng(1), { widthMultiplier: 0.25 });
  const b = createResNet("tiny", new Rng(2), { widthMultiplier: 0.25 });
  const x = tf.randomNormal([2, 8, 8, 3], 0, 1, "float32", 5) as tf.Tensor4D;
  try {
    // Train-mode steps change the running statistics from their init.
    tf.dispose(a.forward(x, { training: true }).embedding);
    for (const torchvision of [false, true]) {
      const path = `${dir}/w.safetensors`;
      await saveWeights(path, a, { torchvision });
      assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), [
        "w.safetensors",
      ]);
      await loadWeights(path, b, { torchvision });
      tf.tidy(() => {
        assertClose(b.forward(x).embedding, a.forward(x).embedding, {
          rtol: 0,
          atol: 0,
        });
      });
      for (const [name, v] of a.buffers()) {
        assertClose(b.buffers().get(name)!, v, { rtol: 0, atol: 0 });
      }
      const { metadata } = decodeSafetensors(Deno.readFileSync(path));
      assertEquals(metadata.layout, torchvision ? "torchvision" : "tfjs");
    }
  } finally {
    tf.dispose(x);
    a.dispose();
    b.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadWeights() reads a torchvision state_dict file, ignoring fc and num_batches_tracked", async () => {
  const net = createResNet("resnet18", new Rng(0), { widthMultiplier: 1 / 16 });
  const result = await loadWeights(
    fixturePath("resnet18_w4.weights.safetensors"),
    net,
    { torchvision: true },
  );
  assertEquals(result, { missing: [], unexpected: [] });
  const torch = readFixture("resnet18_w4.weights.safetensors");
  // OIHW [out, in, kh, kw] -> HWIO [kh, kw, in, out]: element (o, i, y, x).
  const w = net.parameters().get("layer2.0.conv1.weight")!;
  const [kh, kw, cin, cout] = w.shape;
  const hwio = w.dataSync();
  const oihw = torch["layer2.0.conv1.weight"].data as Float32Array;
  const [o, i, y, x] = [cout - 1, 1, 2, 0];
  assertEquals(
    hwio[((y * kw + x) * cin + i) * cout + o],
    oihw[((o * cin + i) * kh + y) * kw + x],
  );
  net.dispose();
});

Deno.test("toTorchvision() inverts fromTorchvision() on a real state_dict", () => {
  const torch = readFixture("resnet50_w2.weights.safetensors");
  const back = toTorchvision(fromTorchvision(torch));
  const kept = Object.keys(torch).filter((k) =>
    !k.startsWith("fc.") && !k.endsWith("num_batches_tracked")
  );
  assertEquals(Object.keys(back).sort(), kept.sort());
  for (const name of kept) assertEquals(back[name], torch[name], name);
});

Deno.test("loadStateDict() names the tensor with the wrong shape and loads nothing", () => {
  const p = createProjector(4, "8-2", new Rng(0));
  const good = stateDictData(p);
  const before = p.parameters().get("0.weight")!.dataSync().slice();
  const bad = {
    ...good,
    "0.weight": { ...good["0.weight"], data: new Float32Array(32).fill(9) },
    "3.weight": {
      dtype: "F32" as const,
      shape: [2, 8],
      data: new Float32Array(16),
    },
  };
  assertThrows(
    () => loadStateDict(p, bad),
    TypeError,
    'tensor "3.weight" of shape [8,2]: received [2,8]',
  );
  assertEquals(p.parameters().get("0.weight")!.dataSync(), before);
  p.dispose();
});

Deno.test("loadStateDict() names missing and unexpected tensors, or skips them when not strict", () => {
  const p = createProjector(4, "8-2", new Rng(0));
  const data = stateDictData(p);
  delete data["1.running_var"];
  data["fc.weight"] = { dtype: "F32", shape: [1], data: Float32Array.of(0) };
  assertThrows(
    () => loadStateDict(p, data),
    TypeError,
    "missing 1.running_var; unexpected fc.weight",
  );
  assertEquals(loadStateDict(p, data, { strict: false }), {
    missing: ["1.running_var"],
    unexpected: ["fc.weight"],
  });
  p.dispose();
});

Deno.test("loadWeights() errors name the file and the tensor", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/small.safetensors`;
  const p = createProjector(4, "8-2", new Rng(0));
  try {
    const data = stateDictData(p);
    data["0.weight"] = {
      dtype: "F32",
      shape: [4, 9],
      data: new Float32Array(36),
    };
    await Deno.writeFile(path, encodeSafetensors(data));
    const error = await assertRejects(
      () => loadWeights(path, p),
      TypeError,
      '"0.weight"',
    );
    assertTrue(error.message.includes(path), error.message);
  } finally {
    p.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stateDict() lists parameters then buffers, as the module's own variables", () => {
  const p = createProjector(4, "8-2", new Rng(0));
  const dict = stateDict(p);
  assertEquals([...dict.keys()], [
    "0.weight",
    "0.bias",
    "1.weight",
    "1.bias",
    "3.weight",
    "1.running_mean",
    "1.running_var",
  ]);
  assertTrue(dict.get("0.weight") === p.parameters().get("0.weight"));
  // A Map of tensors loads like decoded safetensors.
  const q = createProjector(4, "8-2", new Rng(9));
  loadStateDict(q, dict);
  assertClose(
    q.parameters().get("3.weight")!,
    p.parameters().get("3.weight")!,
    { rtol: 0, atol: 0 },
  );
  p.dispose();
  q.dispose();
});

Deno.test("loadStateDict() leaks no tensors from either source kind", async () => {
  const p = createProjector(4, "8-2", new Rng(0));
  const q = createProjector(4, "8-2", new Rng(1));
  const data = stateDictData(p);
  await assertNoLeak(() => {
    loadStateDict(q, data);
    loadStateDict(q, stateDict(p));
  });
  p.dispose();
  q.dispose();
});

Deno.test("readStateDictData() reads what stateDictData() reads, asynchronously", async () => {
  const net = createResNet("tiny", new Rng(3), { widthMultiplier: 0.25 });
  const sync = stateDictData(net);
  const read = await readStateDictData(net);
  assertEquals(Object.keys(read), Object.keys(sync));
  for (const [name, t] of Object.entries(sync)) {
    assertEquals(read[name].shape, t.shape, name);
    assertEquals(read[name].data, t.data, name);
  }
  net.dispose();
});
