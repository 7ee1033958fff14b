// A data set whose files change between a preemption and its resume:
// `vicreg pretrain --resume` refuses with the files named, and with
// --allow-data-change continues on the files there are now, reporting them,
// the same way each time.
import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";
import { proceduralDataset, writeImageFolder } from "@scaling-vicreg/data";
import { readMetrics } from "@scaling-vicreg/train";
import {
  assertSameRun,
  checkpointJson,
  preemptRun,
  runPretrainCli,
  runRecord,
} from "./_run_testing.ts";

/** The relative paths of the PNG files under `root`, sorted. */
function pngs(root: string, below = ""): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${root}/${below}`)) {
    const path = below === "" ? e.name : `${below}/${e.name}`;
    if (e.isDirectory) out.push(...pngs(root, path));
    else if (e.name.endsWith(".png")) out.push(path);
  }
  return out.sort();
}

Deno.test("vicreg pretrain --resume on a data set with a file removed and one corrupted refuses naming both; --allow-data-change continues on the rest, reporting them, identically twice", async () => {
  const root = await Deno.makeTempDir();
  const data = `${root}/images`;
  // 40 images: 5 batches of 8 per epoch, 10 steps.
  await writeImageFolder(
    proceduralDataset({ n: 40, size: 24, seed: 3, split: "train" }),
    data,
  );
  // `folder:` (unlabeled): every file is a training image, no split.
  const flags = { data: `folder:${data}`, "checkpoint-every": 0 };
  const run = `${root}/run`;
  try {
    const { step } = await preemptRun(run, flags, (c) => c.kill("SIGUSR1"));
    const files = pngs(data);
    const [removed, corrupted] = [files[3], files[17]];
    await Deno.remove(`${data}/${removed}`);
    await Deno.writeTextFile(`${data}/${corrupted}`, "not a PNG any more");

    const refused = await runPretrainCli(run, { ...flags, resume: true });
    assertEquals(refused.code, 1, refused.stderr);
    const line = refused.stderr.trim().split("\n").at(-1)!;
    assertEquals(
      line,
      `vicreg pretrain: --resume: the data set changed since ${
        checkpointJson(step)
      } (40 files then, 38 in ${data} now): 2 files gone (removed or no longer readable: ${
        [removed, corrupted].sort().join(", ")
      }); resuming would train on another order from step ${step}: restore the files, or pass --allow-data-change to continue on the 38 files there are now`,
    );

    // The same resume twice, from two copies of the run directory.
    const copy = `${root}/copy`;
    const cp = await new Deno.Command("cp", { args: ["-r", run, copy] })
      .output();
    assertEquals(cp.code, 0);
    const allowed = { ...flags, resume: true, "allow-data-change": true };
    const [a, b] = await Promise.all([
      runPretrainCli(run, allowed),
      runPretrainCli(copy, allowed),
    ]);
    assertEquals(a.code, 0, a.stderr);
    assertEquals(b.code, 0, b.stderr);
    assertTrue(
      a.stderr.includes(
        `warning: --allow-data-change: the data set changed since ${
          checkpointJson(step)
        } (40 files then, 38 in ${data} now): 2 files gone`,
      ),
      a.stderr,
    );
    assertSameRun(await runRecord(copy), await runRecord(run));
    // 38 images are 4 batches an epoch: the run now ends at step 8.
    const metrics = await readMetrics(run);
    assertEquals(metrics.at(-1)?.totalSteps, 8);
    const events = (await Deno.readTextFile(`${run}/metrics.jsonl`)).trim()
      .split("\n").map((l) => JSON.parse(l)).filter((l) => l.event);
    assertEquals(
      events.map((e) => [e.step, e.event, e.removed, e.files]),
      [[step, "data-change", 2, 38]],
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
