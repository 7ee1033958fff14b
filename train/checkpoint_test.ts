import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";
import type { SafeTensor } from "@scaling-vicreg/models/safetensors";
import {
  loadLatestCheckpoint,
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
