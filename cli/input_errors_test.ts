// One-line errors for the bad inputs of issue 18 ("smaller ones").
import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";
import { encodePng } from "@scaling-vicreg/data";
import { configToYaml, resolveConfig } from "@scaling-vicreg/train";
import { main } from "./main.ts";
import { openLabelledSplits } from "./_data.ts";

async function capture(
  fn: () => Promise<number>,
): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const error = console.error;
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await fn(), err: err.join("\n") };
  } finally {
    console.error = error;
  }
}

Deno.test("main() names the flag of a negative value instead of calling it ambiguous", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await capture(() =>
      main(["pretrain", "--batch-size", "-4", "--exp-dir", `${dir}/run`])
    );
    assertEquals(r.code, 1);
    assertEquals(r.err.split("\n").length, 1, r.err);
    assertTrue(r.err.includes('Key "batch-size"'), r.err);
    assertTrue(r.err.includes("-4"), r.err);
    assertEquals(r.err.includes("ambiguous"), false, r.err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main() says a --data kind is unknown", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await capture(() =>
      main([
        "pretrain",
        "--data",
        `foo:${dir}/images`,
        "--exp-dir",
        `${dir}/run`,
      ])
    );
    assertEquals(r.code, 1);
    assertTrue(r.err.includes('Unknown data-set kind "foo"'), r.err);
    assertTrue(r.err.includes("imagefolder"), r.err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main() fails a --resume with nothing to resume, naming what it found", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await capture(() =>
      main([
        "pretrain",
        "--preset",
        "tiny",
        "--resume",
        "--exp-dir",
        `${dir}/typo`,
      ])
    );
    assertEquals(r.code, 1, r.err);
    assertTrue(r.err.includes("nothing to resume"), r.err);
    assertTrue(r.err.includes("check --exp-dir"), r.err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main() export of a run without a backbone says so", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/config.yaml`,
      configToYaml(resolveConfig({ flags: { preset: "tiny" } })),
    );
    const r = await capture(() =>
      main(["export", "--run", dir, "--out", `${dir}/w.safetensors`])
    );
    assertEquals(r.code, 1);
    assertTrue(r.err.includes("has no backbone.safetensors"), r.err);
    assertTrue(r.err.includes("--resume"), r.err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openLabelledSplits() refuses a one-class ImageFolder naming the need for 2 classes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const png = await encodePng({
      width: 8,
      height: 8,
      data: new Uint8Array(8 * 8 * 3).fill(7),
    });
    for (const split of ["train", "val"]) {
      await Deno.mkdir(`${dir}/${split}/only`, { recursive: true });
      for (let i = 0; i < 3; i++) {
        await Deno.writeFile(`${dir}/${split}/only/${i}.png`, png);
      }
    }
    let message = "";
    try {
      await openLabelledSplits(`imagefolder:${dir}`, {
        numImages: 8,
        imageSize: 8,
        seed: 0,
      });
    } catch (error) {
      message = (error as Error).message;
    }
    assertTrue(
      message.includes("Expected at least 2 classes in the train split"),
      message,
    );
    assertTrue(message.startsWith("Flag --data:"), message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
