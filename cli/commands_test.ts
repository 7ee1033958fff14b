/**
 * Every `vicreg` subcommand end to end on tiny inputs, through `main()` as the
 * command line calls it. One temporary directory holds what the commands hand
 * each other (the demo's run feeds `export`, `embed` and `probe`; `probe`'s
 * report feeds `report`), and is removed in `finally`.
 */
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "@scaling-vicreg/backend";
import { EventWriter } from "@scaling-vicreg/tensorboard";
import {
  assertClose,
  assertEquals,
  assertTrue,
  loadableBackends,
} from "@scaling-vicreg/backend/testing";
import {
  decodeSafetensors,
  readNpy,
  stateDict,
  writeNpy,
} from "@scaling-vicreg/models";
import { formatHeadline, readReport } from "@scaling-vicreg/probe";
import { loadRunBackbone } from "@scaling-vicreg/train";
import { COMMANDS } from "./commands.ts";
import { main } from "./main.ts";

async function run(
  argv: string[],
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await main(argv);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

async function ok(argv: string[]): Promise<string> {
  const r = await run(argv);
  assertEquals(r.code, 0, `vicreg ${argv.join(" ")}:\n${r.err}`);
  return r.out;
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

function count(dir: string): number {
  let n = 0;
  for (const e of Deno.readDirSync(dir)) {
    n += e.isDirectory ? count(`${dir}/${e.name}`) : 1;
  }
  return n;
}

// blas runs the demo's pretraining and probes in seconds, cpu-fast in about
// a minute; the wiring under test is the same on both.
const [[, blasLoads]] = await loadableBackends(["blas"]);
const BACKEND = ["--backend", blasLoads ? "blas" : "cpu-fast"];

Deno.test("every vicreg subcommand runs end to end on a tiny input", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "vicreg-cli-" });
  try {
    const tested = new Set<string>();
    const step = (name: string, fn: () => Promise<void>) =>
      t.step(name, async () => {
        tested.add(name.split(" ")[0]);
        await fn();
      });

    await step("backends lists every backend and what auto picks", async () => {
      const out = await ok(["backends"]).then((s) => s.split("\n"));
      for (const name of ["cpu", "cpu-fast", "wasm", "tensorflow"]) {
        assertTrue(
          out.some((l) => new RegExp(`^(ok|no)\\s+${name}\\s`).test(l)),
          out.join("\n"),
        );
      }
      assertTrue(/^ok\s+cpu\s/m.test(out.join("\n")), out.join("\n"));
      assertTrue(out.at(-1)!.startsWith("auto → "), out.at(-1));
    });

    await step(
      "make-dataset writes the procedural train/test folders",
      async () => {
        await ok([
          "make-dataset",
          ...["--out", `${dir}/data`, "--n", "20", "--size", "16"],
        ]);
        assertEquals(names(`${dir}/data`), ["test", "train"]);
        // round(20 · (1 − 0.2)) = 16 train images, 4 test images, as PNG files.
        assertEquals(count(`${dir}/data/train`), 16);
        assertEquals(count(`${dir}/data/test`), 4);
        // A second run refuses to overwrite without --force.
        const again = await run(["make-dataset", "--out", `${dir}/data`]);
        assertEquals(again.code, 1);
        assertTrue(again.err.includes("--force"), again.err);
      },
    );

    await step(
      "cache packs the folder into shards with a manifest",
      async () => {
        await ok([
          "cache",
          ...["--data", `imagefolder:${dir}/data/train`, "--size", "8"],
          ...["--out", `${dir}/cache`],
        ]);
        const files = names(`${dir}/cache`);
        assertTrue(files.length >= 2, files.join(" "));
        const manifest = files.find((f) => f.endsWith(".json"));
        assertTrue(manifest !== undefined, files.join(" "));
        const text = await Deno.readTextFile(`${dir}/cache/${manifest}`);
        assertTrue(text.includes("16"), text.slice(0, 200));
      },
    );

    await step("preview writes a PNG of originals and two views", async () => {
      const out = await ok([
        "preview",
        ...["--n", "2", "--size", "16", "--out", `${dir}/views.png`],
      ]);
      assertTrue(out.includes("2 rows"), out);
      const png = await Deno.readFile(`${dir}/views.png`);
      assertEquals(
        [...png.subarray(0, 8)],
        [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
      );
    });

    const run1 = `${dir}/demo`;
    await step(
      "demo pretrains the tiny ResNet and probes it against random init",
      async () => {
        const out = await ok([
          "demo",
          ...["--exp-dir", run1, "--epochs", "1", "--max-steps", "2"],
          ...["--num-images", "64", "--probe-images", "40"],
          ...["--trials", "1", "--max-epochs", "1", ...BACKEND],
        ]);
        assertTrue(out.includes("VICReg-pretrained tiny ResNet"), out);
        assertTrue(out.includes("random init"), out);
        const files = names(run1);
        assertTrue(files.includes("backbone.safetensors"), files.join(" "));
        assertTrue(files.includes("probe-VICReg"), files.join(" "));
        assertTrue(files.includes("probe-random-init"), files.join(" "));
      },
    );

    await step("export writes the run's backbone as safetensors", async () => {
      await ok(["export", "--run", run1, "--out", `${dir}/backbone.st`]);
      const exported = decodeSafetensors(
        await Deno.readFile(`${dir}/backbone.st`),
      );
      const { backbone } = await loadRunBackbone(run1);
      try {
        // The same tensors as the run's backbone, by name and value.
        const mine = stateDict(backbone);
        assertTrue(mine.size > 0);
        for (const [name, v] of mine) {
          const t = exported.tensors[name];
          assertTrue(t !== undefined, `export lacks ${name}`);
          assertClose(t.data as Float32Array, v.dataSync(), {
            rtol: 0,
            atol: 0,
          });
        }
      } finally {
        backbone.dispose();
      }
    });

    await step(
      "embed writes the backbone's pooled embeddings of a .npy",
      async () => {
        const rng = new Rng(5);
        const x = Float32Array.from(
          { length: 2 * 16 * 16 * 3 },
          () => rng.normal(),
        );
        await Deno.writeFile(
          `${dir}/x.npy`,
          writeNpy({ dtype: "float32", shape: [2, 16, 16, 3], data: x }),
        );
        await ok([
          "embed",
          ...["--arch", "tiny", "--weights", `${dir}/backbone.st`],
          ...["--input", `${dir}/x.npy`, "--out", `${dir}/f.npy`, ...BACKEND],
        ]);
        const f = readNpy(await Deno.readFile(`${dir}/f.npy`));
        // Independently: the run's backbone in evaluation mode on the same x.
        const { backbone } = await loadRunBackbone(run1);
        try {
          const expected = tf.tidy(() =>
            backbone.forward(tf.tensor4d(x, [2, 16, 16, 3])).embedding
              .arraySync()
          );
          assertEquals(f.shape, [2, expected[0].length]);
          assertClose(f.data as Float32Array, expected, {
            rtol: 1e-4,
            atol: 1e-5,
          });
        } finally {
          backbone.dispose();
        }
      },
    );

    await step("probe re-probes the run and writes its report", async () => {
      const out = await ok([
        "probe",
        ...["--run", run1, "--data", "procedural", "--num-images", "40"],
        ...["--trials", "1", "--max-epochs", "1", "--out", `${dir}/probe`],
        ...BACKEND,
      ]);
      const report = await readReport(`${dir}/probe`);
      assertTrue(out.includes(formatHeadline(report)), out);
      assertTrue(report.baseline.top1 >= 0 && report.baseline.top1 <= 1);
    });

    await step("report re-renders a probe report elsewhere", async () => {
      const out = await ok(["report", `${dir}/probe`, "--out", `${dir}/rep`]);
      const report = await readReport(`${dir}/probe`);
      assertEquals(out, formatHeadline(report));
      assertEquals(await readReport(`${dir}/rep`), report);
      const files = names(`${dir}/rep`);
      for (const f of ["accuracy.svg", "report.json", "report.md"]) {
        assertTrue(files.includes(f), files.join(" "));
      }
    });

    await step(
      "ablate runs a one-configuration study and writes its table",
      async () => {
        await Deno.writeTextFile(
          `${dir}/study.yaml`,
          [
            "title: CLI test study",
            "pretrain-data: procedural",
            'pretrain: { preset: tiny, "num-images": 16, "image-size": 24 }',
            "budget: { epochs: 1, batch-size: 8, size: 16, seed: 0 }",
            "configurations: [global-only]",
            "downstream:",
            "  - { name: shapes, data: procedural, seed: 1, train-images: 40, test-images: 20, image-size: 24 }",
            "probe: { trials: 1, max-epochs: 1, baseline-epochs: 1, tta: false }",
            `out: ${dir}/study`,
          ].join("\n"),
        );
        await ok([
          "ablate",
          ...["--config", `${dir}/study.yaml`, "--max-steps", "1", ...BACKEND],
        ]);
        const files = names(`${dir}/study`);
        for (const f of ["study.json", "study.md"]) {
          assertTrue(files.includes(f), files.join(" "));
        }
        const md = await Deno.readTextFile(`${dir}/study/study.md`);
        assertTrue(md.includes("global-only"), md);
        // TensorBoard: the run's event file, and its probe's beside it.
        const run = `${dir}/study/runs/global-only`;
        assertEquals((await EventWriter.list(run)).length, 1);
        assertEquals(
          (await EventWriter.list(`${run}/probe-shapes`, ".probe")).length,
          1,
        );
      },
    );

    // pretrain has its own end-to-end test (pretrain_test.ts: SIGINT).
    tested.add("pretrain");
    assertEquals(
      [...tested].sort(),
      COMMANDS.map((c) => c.name).sort(),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
