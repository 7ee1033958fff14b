import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";
import type { SafeTensor } from "@scaling-vicreg/backend/safetensors";
import {
  loadLatestCheckpoint,
  pruneCheckpoints,
  saveCheckpoint,
  type SkippedCheckpoint,
} from "./checkpoint.ts";

function tensors(value: number): Record<string, SafeTensor> {
  return {
    "backbone.w": {
      dtype: "F32",
      shape: [2],
      data: Float32Array.of(value, value + 1),
    },
  };
}

Deno.test("saveCheckpoint() keeps the newest K and loadLatestCheckpoint() reads the newest", async () => {
  const dir = await Deno.makeTempDir();
  for (const step of [1, 2, 3]) {
    await saveCheckpoint(dir, tensors(step), {
      step,
      epoch: 0,
      batch: step,
      state: { loss: step },
    }, { keep: 2 });
  }
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assertEquals(names, [
    "checkpoint-00000002.json",
    "checkpoint-00000002.safetensors",
    "checkpoint-00000003.json",
    "checkpoint-00000003.safetensors",
  ]);
  const ckpt = await loadLatestCheckpoint(dir);
  assertEquals(ckpt?.meta.step, 3);
  assertEquals(ckpt?.meta.state, { loss: 3 });
  assertEquals(Array.from(ckpt!.tensors["backbone.w"].data as Float32Array), [
    3,
    4,
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadLatestCheckpoint() passes over a damaged or half-written checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  await saveCheckpoint(dir, tensors(1), {
    step: 1,
    epoch: 0,
    batch: 1,
    state: {},
  });
  await saveCheckpoint(dir, tensors(2), {
    step: 2,
    epoch: 0,
    batch: 2,
    state: {},
  });
  // A write killed midway: tensors of step 3 (and a temp file) but no JSON.
  await Deno.writeFile(
    `${dir}/checkpoint-00000003.safetensors`,
    new Uint8Array(10),
  );
  await Deno.writeFile(
    `${dir}/checkpoint-00000003.json.tmp-1-abc`,
    new Uint8Array(3),
  );
  // Step 2's tensors truncated after the fact.
  const path2 = `${dir}/checkpoint-00000002.safetensors`;
  const bytes = await Deno.readFile(path2);
  await Deno.writeFile(path2, bytes.subarray(0, bytes.length - 4));
  const skipped: SkippedCheckpoint[] = [];
  const ckpt = await loadLatestCheckpoint(dir, skipped);
  assertEquals(ckpt?.meta.step, 1);
  assertEquals(skipped.length, 1);
  assertTrue(skipped[0].reason.includes("SHA-256"));
  assertEquals(await loadLatestCheckpoint(`${dir}/missing`), undefined);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("saveCheckpoint() counts only good checkpoints: damaged newer ones go to damaged/ and the new one survives", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const step of [10, 20, 30, 40]) {
      await saveCheckpoint(dir, tensors(step), {
        step,
        epoch: 0,
        batch: 0,
        state: {},
      }, { keep: 4 });
    }
    // The three newest damaged in place (the issue's `dd … conv=notrunc`).
    for (const step of [20, 30, 40]) {
      const path = `${dir}/checkpoint-000000${step}.safetensors`;
      const bytes = await Deno.readFile(path);
      bytes[bytes.length - 2] ^= 0xff;
      await Deno.writeFile(path, bytes);
    }
    const reported: SkippedCheckpoint[] = [];
    for (const step of [11, 12]) {
      await saveCheckpoint(dir, tensors(step), {
        step,
        epoch: 0,
        batch: 0,
        state: {},
      }, { keep: 2, onDamaged: (d) => reported.push(d) });
    }
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assertEquals(names, [
      "checkpoint-00000011.json",
      "checkpoint-00000011.safetensors",
      "checkpoint-00000012.json",
      "checkpoint-00000012.safetensors",
      "damaged",
    ]);
    assertEquals(reported.map((d) => d.step).sort(), [20, 30, 40]);
    assertEquals(
      [...Deno.readDirSync(`${dir}/damaged`)].length,
      6,
    );
    assertEquals((await loadLatestCheckpoint(dir))?.meta.step, 12);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pruneCheckpoints() moves a damaged older checkpoint aside instead of counting it, and removes orphan tensors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const step of [1, 2, 3]) {
      await saveCheckpoint(dir, tensors(step), {
        step,
        epoch: 0,
        batch: 0,
        state: {},
      }, { keep: 5 });
    }
    await Deno.writeTextFile(`${dir}/checkpoint-00000002.json`, "{");
    // Tensors of a write killed before its JSON.
    await Deno.writeFile(
      `${dir}/checkpoint-00000000.safetensors`,
      new Uint8Array(8),
    );
    await pruneCheckpoints(dir, 3, { keep: 2 });
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assertEquals(names, [
      "checkpoint-00000001.json",
      "checkpoint-00000001.safetensors",
      "checkpoint-00000003.json",
      "checkpoint-00000003.safetensors",
      "damaged",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveCheckpoint() whose JSON cannot be written leaves no tensors file of its step, and the previous checkpoint the newest", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const meta = (step: number) => ({ step, epoch: 0, batch: step, state: {} });
    await saveCheckpoint(dir, tensors(1), meta(1));
    // A folder in the way of the JSON's rename makes its write fail.
    await Deno.mkdir(`${dir}/checkpoint-00000002.json`);
    let failed = false;
    await saveCheckpoint(dir, tensors(2), meta(2)).catch(() => failed = true);
    assertTrue(failed, "the write should fail");
    await Deno.remove(`${dir}/checkpoint-00000002.json`);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "checkpoint-00000001.json",
      "checkpoint-00000001.safetensors",
    ]);
    assertEquals((await loadLatestCheckpoint(dir))?.meta.step, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
