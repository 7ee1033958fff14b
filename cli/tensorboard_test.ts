// `vicreg pretrain`'s TensorBoard event files read back by TensorBoard's own
// reader (EventAccumulator, in a Python subprocess): every scalar at every
// step equal to metrics.jsonl, the preview image and the configuration at
// step 0, and a resume after a kill showing each step once.
import {
  assertEquals,
  assertTrue,
  ignoreUnless,
  pythonImports,
} from "@scaling-vicreg/backend/testing";
import { Rng } from "@scaling-vicreg/backend";
import { writeNpy } from "@scaling-vicreg/backend/npy";
import { EventWriter } from "@scaling-vicreg/tensorboard";

const MAIN = new URL("./main.ts", import.meta.url).pathname;
const TENSORBOARD = await pythonImports("tensorboard");

const FLAGS = [
  ...["--preset", "tiny", "--backend", "cpu-fast"],
  ...["--size", "16", "--image-size", "24", "--batch-size", "8"],
  ...["--num-images", "32", "--mlp", "32-32", "--local-mlp", "16-8"],
  ...["--log-every", "1", "--checkpoint-every", "2", "--max-steps", "4"],
];

async function vicreg(args: string[]): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
}

/** What TensorBoard reads from a run directory. */
interface Read {
  tags: Record<string, unknown>;
  scalars: Record<string, [number, number][]>;
  images: Record<string, [number, number, number][]>;
  text: Record<string, [number, string][]>;
  plugins: Record<string, string>;
  /** Per event file, in name order: its SessionLog events (step, status). */
  sessions: [number, number][][];
}

async function readWithTensorBoard(dir: string): Promise<Read> {
  const script = `
import glob, json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "images": 0, "tensors": 0})
acc.Reload()
tags = acc.Tags()
sessions = [
  [[e.step, e.session_log.status] for e in EventFileLoader(path).Load() if e.HasField("session_log")]
  for path in sorted(glob.glob(sys.argv[1] + "/events.out.tfevents.*"))
]
print(json.dumps({
  "tags": tags,
  "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
  "images": {t: [[e.step, e.width, e.height] for e in acc.Images(t)] for t in tags["images"]},
  "text": {t: [[e.step, e.tensor_proto.string_val[0].decode()] for e in acc.Tensors(t)] for t in tags["tensors"]},
  "plugins": {t: acc.SummaryMetadata(t).plugin_data.plugin_name for t in tags["tensors"]},
  "sessions": sessions,
}))
`;
  const out = await new Deno.Command("python3", {
    args: ["-c", script, dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/**
 * The scalars metrics.jsonl implies, tag by tag: every number of every step
 * line but the position fields, as float32 (TensorBoard's simple_value).
 */
async function expectedScalars(
  dir: string,
): Promise<Record<string, [number, number][]>> {
  const lines = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim()
    .split("\n").map((l) => JSON.parse(l))
    .filter((m) => m.event === undefined);
  const out: Record<string, [number, number][]> = {};
  for (const m of lines) {
    for (const [key, value] of Object.entries(m)) {
      if (["step", "batch", "totalSteps"].includes(key)) continue;
      if (typeof value !== "number") continue;
      const tag = "train/" +
        key.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
      (out[tag] ??= []).push([m.step, Math.fround(value)]);
    }
  }
  return out;
}

/** Width and height of a PNG, from its IHDR chunk. */
function pngSize(bytes: Uint8Array): [number, number] {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  return [view.getUint32(16), view.getUint32(20)];
}

Deno.test({
  name:
    "vicreg pretrain's event files, read by TensorBoard's EventAccumulator, hold every metrics.jsonl value at every step, the preview and the config, and each step once after a resume",
  ignore: ignoreUnless(
    TENSORBOARD,
    "tensorboard",
    "python3 cannot import tensorboard (pip install tensorboard)",
  ),
  async fn() {
    const dir = await Deno.makeTempDir();
    const run = `${dir}/run`;
    try {
      await vicreg(["pretrain", ...FLAGS, "--exp-dir", run]);
      const first = await readWithTensorBoard(run);
      const fresh = await expectedScalars(run);
      assertEquals(Object.keys(fresh).sort(), [
        "train/collapsed_fraction",
        "train/covariance",
        "train/embedding_std",
        "train/epoch",
        "train/grad_norm",
        "train/images_per_second",
        "train/invariance",
        "train/local_loss",
        "train/loss",
        "train/lr",
        "train/num_tensors",
        "train/online_loss",
        "train/online_top1",
        "train/variance",
      ]);
      assertEquals(first.scalars, fresh);
      assertEquals(fresh["train/loss"].map(([step]) => step), [1, 2, 3, 4]);
      assertEquals(first.sessions, [[[0, 1]]]); // SessionLog.START at step 0
      // The preview: the same grid `vicreg preview` draws (8 rows of 16 px).
      const preview = await Deno.makeTempFile({ suffix: ".png" });
      await vicreg([
        "preview",
        ...["--n", "8", "--size", "16", "--out", preview],
      ]);
      assertEquals(first.images, {
        "augmentation/preview": [[0, ...pngSize(await Deno.readFile(preview))]],
      });
      await Deno.remove(preview);
      const config = await Deno.readTextFile(`${run}/config.yaml`);
      assertEquals(first.text, { config: [[0, "```yaml\n" + config + "```"]] });
      assertEquals(first.plugins, { config: "text" });

      // As if killed while logging step 4: its checkpoint never written and
      // the event file torn inside its last record.
      for (const ext of ["json", "safetensors"]) {
        await Deno.remove(`${run}/checkpoint-00000004.${ext}`);
      }
      const [file] = [...Deno.readDirSync(run)].map((e) => e.name)
        .filter((n) => n.startsWith("events.out.tfevents."));
      const bytes = await Deno.readFile(`${run}/${file}`);
      await Deno.writeFile(
        `${run}/${file}`,
        bytes.subarray(0, bytes.length - 5),
      );
      await vicreg([
        "pretrain",
        "--resume",
        "--exp-dir",
        run,
        "--backend",
        "cpu-fast",
      ]);

      const resumed = await readWithTensorBoard(run);
      const expected = await expectedScalars(run);
      // metrics.jsonl: steps 1-2 of the first run, 3-4 of the resumed one;
      // TensorBoard shows the same, each step once.
      assertEquals(resumed.scalars, expected);
      assertEquals(expected["train/loss"].map(([step]) => step), [1, 2, 3, 4]);
      // The re-run steps took new wall-clock figures: what is shown is the
      // resumed run's, not the first run's.
      assertTrue(
        expected["train/images_per_second"][2][1] !==
          fresh["train/images_per_second"][2][1],
      );
      // The resumed file's SessionLog.START at step 3, the first re-run step.
      assertEquals(resumed.sessions, [[[0, 1]], [[3, 1]]]);
      assertEquals(resumed.text.config.map(([step]) => step), [0, 3]);
      assertEquals(resumed.images["augmentation/preview"].length, 1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "vicreg probe's event file, read by TensorBoard's EventAccumulator, holds report.json's top-1 of each row and of each trial, and a second probe replaces it",
  ignore: ignoreUnless(
    TENSORBOARD,
    "tensorboard",
    "python3 cannot import tensorboard (pip install tensorboard)",
  ),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const rng = new Rng(5);
      for (const [name, rows] of [["tr", 24], ["te", 12]] as const) {
        await Deno.writeFile(
          `${dir}/${name}.npy`,
          writeNpy({
            shape: [rows, 4],
            dtype: "float32",
            data: Float32Array.from(
              { length: rows * 4 },
              () => rng.normal(0, 1),
            ),
          }),
        );
        await Deno.writeFile(
          `${dir}/y${name}.npy`,
          writeNpy({
            shape: [rows],
            dtype: "int32",
            data: Int32Array.from({ length: rows }, (_, i) => i % 3),
          }),
        );
      }
      const out = `${dir}/probe`;
      const probe = () =>
        vicreg([
          "probe",
          ...[
            "--train-features",
            `${dir}/tr.npy`,
            "--train-labels",
            `${dir}/ytr.npy`,
          ],
          ...[
            "--test-features",
            `${dir}/te.npy`,
            "--test-labels",
            `${dir}/yte.npy`,
          ],
          ...[
            "--trials",
            "3",
            "--max-epochs",
            "2",
            "--backend",
            "cpu",
            "--out",
            out,
          ],
        ]);
      await probe();
      await probe();
      // The second probe's file replaced the first's.
      assertEquals((await EventWriter.list(out)).length, 1);
      const report = JSON.parse(await Deno.readTextFile(`${out}/report.json`));
      const read = await readWithTensorBoard(out);
      const f = Math.fround;
      assertEquals(read.scalars, {
        "probe/baseline/top1": [[0, f(report.baseline.top1)]],
        "probe/sweep/top1": [[0, f(report.sweep.top1)]],
        "probe/knn/top1": [[0, f(report.knn.top1)]],
        "probe/sweep/trial_validation_top1": report.trials.map((
          t: { index: number; validationTop1: number },
        ) => [t.index, f(t.validationTop1)]),
      });
      assertEquals(report.trials.length, 3);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
