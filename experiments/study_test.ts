import { useBackend } from "@scaling-vicreg/backend";
import {
  assertEquals,
  assertRejects,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { ConfigError } from "@scaling-vicreg/train/config";
import {
  assertEqualBudgets,
  BUILTIN_CONFIGURATIONS,
  checkStudy,
  parseStudy,
  runConfig,
  runDirOf,
  runNameOf,
  runStudy,
  type Study,
  type StudyEvent,
  type StudyRun,
  studySeeds,
  TINY_STUDY,
} from "./mod.ts";

Deno.test("parseStudy() reads built-in and custom configurations with one budget", () => {
  const study = parseStudy({
    budget: { epochs: 2, "batch-size": 8, size: 16, seed: 3 },
    configurations: ["global-only", "local-only", {
      name: "mine",
      flags: { "use-local-loss": true, "local-loss-weight": 0.5 },
    }],
    downstream: [{ name: "a", data: "procedural", seed: 5 }],
    pretrain: { preset: "tiny", "num-images": 64 },
  });
  const configs = study.configurations.map((c) => runConfig(study, c, false));
  assertEquals(configs.map((c) => [c.cropMinScale, c.cropMaxScale]), [
    [0.5, 1],
    [0.05, 0.5],
    [0.2, 1],
  ]);
  assertEquals(configs.map((c) => c.useLocalLoss), [false, false, true]);
  assertEquals(configs[2].localLossWeight, 0.5);
  for (const c of configs) {
    assertEquals(
      [c.epochs, c.batchSize, c.size, c.seed, c.numImages],
      [2, 8, 16, 3, 64],
    );
  }
  assertEquals(study.configurations[2].description, "custom");
  assertEquals(study.downstream[0].seed, 5);
});

Deno.test("parseStudy() gives the paper's Table 1 rows by default", () => {
  const study = parseStudy({});
  assertEquals(study.configurations.map((c) => c.name), [
    "resnet34",
    "global-only",
    "local-only",
    "global-local",
    "full",
    "full-location",
    "full-feature",
  ]);
  const configs = study.configurations.map((c) => runConfig(study, c, false));
  assertEquals(configs[0].arch, "resnet34");
  assertEquals(configs.slice(3).map((c) => c.localMatching), [
    "location",
    "index",
    "location",
    "feature",
  ]);
  assertEquals(configs.map((c) => c.localCrops), [0, 0, 0, 6, 0, 0, 0]);
  assertEquals(
    configs.map((c) => c.useLocalLoss ? c.localLossWeight : 0),
    [0.2, 0, 0, 0.2, 0.2, 0.2, 0.2],
  );
});

Deno.test("parseStudy() takes 10-crop TTA on every split by default, the test-only variant on request", () => {
  assertEquals(parseStudy({}).probe.ttaOn, "all");
  assertEquals(parseStudy({ probe: { "tta-on": "test" } }).probe.ttaOn, "test");
  assertThrows(
    () => parseStudy({ probe: { "tta-on": "train" } }, "s.yaml"),
    ConfigError,
    'Key "probe.tta-on" in s.yaml expects all or test: received "train"',
  );
});

Deno.test("parseStudy() refuses a configuration that changes the budget", () => {
  for (const key of ["epochs", "batch-size", "seed", "size", "max-steps"]) {
    const error = assertThrows(
      () =>
        parseStudy({
          configurations: [{ name: "cheat", flags: { [key]: 2 } }],
        }, "s.yaml"),
      ConfigError,
    );
    assertEquals(error.key, `configurations[0].flags.${key}`);
  }
});

Deno.test("parseStudy() names unknown keys, bad values and duplicates", () => {
  assertThrows(
    () => parseStudy({ budjet: {} }, "s.yaml"),
    ConfigError,
    'Unknown key "study.budjet" in s.yaml',
  );
  assertThrows(
    () => parseStudy({ budget: { epochs: 0 } }, "s.yaml"),
    ConfigError,
    'Key "budget.epochs" in s.yaml expects an integer ≥ 1: received 0',
  );
  assertThrows(
    () => parseStudy({ configurations: ["full", "full"] }, "s.yaml"),
    ConfigError,
    'Duplicate name "full"',
  );
  assertThrows(
    () => parseStudy({ configurations: ["fulll"] }, "s.yaml"),
    ConfigError,
    'Unknown configuration "fulll"',
  );
  assertThrows(
    () =>
      parseStudy({
        configurations: [{ name: "x", flags: { "local-matching": "nearest" } }],
      }, "s.yaml"),
    ConfigError,
    'Configuration "x" of s.yaml: Key "local-matching" in flags expects one of index, location, feature',
  );
  assertThrows(
    () =>
      parseStudy({
        downstream: [{ name: "cub", data: "cub200:/x", "train-images": 5 }],
      }, "s.yaml"),
    ConfigError,
    'Key "downstream[0].train-images" in s.yaml applies only to procedural data',
  );
});

Deno.test("parseStudy() reads seeds (default 1) and runConfig() gives each seed its run", () => {
  assertEquals(parseStudy({}).seeds, 1);
  const study = parseStudy({ seeds: 3, budget: { seed: 4 }, out: "o" });
  assertEquals(studySeeds(study), [4, 5, 6]);
  assertEquals(studySeeds(TINY_STUDY), [0]);
  const full = BUILTIN_CONFIGURATIONS.full;
  // The first seed's run is named as in a one-seed study.
  assertEquals(
    studySeeds(study).map((s) => runNameOf(study, "full", s)),
    ["full", "full.seed5", "full.seed6"],
  );
  assertEquals(runDirOf(study, "full", 6), "o/runs/full.seed6");
  const configs = studySeeds(study).map((s) =>
    runConfig(study, full, false, s)
  );
  assertEquals(configs.map((c) => [c.seed, c.expDir]), [
    [4, "o/runs/full"],
    [5, "o/runs/full.seed5"],
    [6, "o/runs/full.seed6"],
  ]);
  assertEquals(runConfig(study, full, false).seed, 4);
  for (const bad of [0, -1, 1.5, "3"]) {
    assertThrows(
      () => parseStudy({ seeds: bad }, "s.yaml"),
      ConfigError,
      `Key "seeds" in s.yaml expects an integer ≥ 1: received ${
        JSON.stringify(bad)
      }`,
    );
  }
  assertThrows(
    () => checkStudy({ ...study, seeds: 0 }, "code"),
    ConfigError,
    'Key "seeds" in code expects an integer ≥ 1',
  );
  // A row may not take the name of another row's further seed.
  assertThrows(
    () =>
      parseStudy({
        configurations: ["full", { name: "full.seed1", flags: {} }],
      }, "s.yaml"),
    ConfigError,
    'Key "configurations[1].name" in s.yaml expects a name that does not end in ".seed<n>"',
  );
});

Deno.test("assertEqualBudgets() names the key that differs", () => {
  const study = parseStudy({ budget: { "batch-size": 8 } });
  const a = runConfig(study, BUILTIN_CONFIGURATIONS.full, false);
  assertEqualBudgets([a, { ...a, expDir: "elsewhere" }]);
  assertThrows(
    () => assertEqualBudgets([a, { ...a, seed: 1 }]),
    RangeError,
    '"seed" is 0 in the first and 1 in number 2',
  );
});

Deno.test("TINY_STUDY is valid and leaves resnet34 out with a note", () => {
  checkStudy(TINY_STUDY, "the tiny preset");
  assertTrue(!TINY_STUDY.configurations.some((c) => c.name === "resnet34"));
  assertTrue(TINY_STUDY.notes.some((n) => n.startsWith("resnet34")));
  const configs = TINY_STUDY.configurations.map((c) =>
    runConfig(TINY_STUDY, c, false)
  );
  assertEqualBudgets(configs);
  assertTrue(configs.every((c) => c.arch === "tiny"));
  // the multi-crop row beside the rows that emulate crops by the two views'
  // scale
  const names = TINY_STUDY.configurations.map((c) => c.name);
  const multi = configs[names.indexOf("global-local")];
  assertEquals(
    [multi.globalCrops, multi.localCrops, multi.localCropScale],
    [2, 6, "0.05,0.5"],
  );
  assertTrue(
    configs.filter((_, i) => names[i] !== "global-local").every((c) =>
      c.localCrops === 0
    ),
  );
});

async function mtimes(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const e of Deno.readDir(dir)) {
    out.set(e.name, (await Deno.stat(`${dir}/${e.name}`)).mtime!.getTime());
  }
  return out;
}

Deno.test("runStudy() runs a CI-sized study, resumes after interruptions and writes the report", async () => {
  await useBackend("cpu-fast");
  const out = await Deno.makeTempDir({ prefix: "study-" });
  const study: Study = parseStudy({
    title: "CI study",
    pretrain: {
      preset: "tiny",
      "num-images": 24,
      "image-size": 24,
      mlp: "32-32",
      "local-mlp": "16-8",
      "log-every": 1,
    },
    budget: { epochs: 1, "max-steps": 3, "batch-size": 8, size: 16, seed: 0 },
    configurations: ["global-only", "full"],
    downstream: [{
      name: "shapes",
      data: "procedural",
      seed: 1,
      "train-images": 30,
      "test-images": 10,
      "image-size": 24,
    }],
    probe: { trials: 2, "max-epochs": 2, "baseline-epochs": 2, tta: true },
    out,
  });
  try {
    // 1. Interrupt between the runs: the first is finished, the second not started.
    let controller = new AbortController();
    let events: StudyEvent[] = [];
    const first = await runStudy(study, {
      signal: controller.signal,
      commit: null,
      onEvent: (e) => {
        events.push(e);
        if (e.kind === "run-done") controller.abort();
      },
    });
    assertEquals(first.status, "interrupted");
    assertEquals(first.runs.map((r) => r.configuration), ["global-only"]);
    const finished = await mtimes(`${out}/runs/global-only`);
    assertTrue(finished.has("done.json") && finished.has("metrics.jsonl"));

    // 2. Interrupt the second run after its first step: it checkpoints.
    controller = new AbortController();
    events = [];
    const second = await runStudy(study, {
      signal: controller.signal,
      commit: null,
      onEvent: (e) => {
        events.push(e);
        if (e.kind === "step" && e.configuration === "full") controller.abort();
      },
    });
    assertEquals(second.status, "interrupted");
    assertEquals(
      events.filter((e) => e.kind.startsWith("run-")).map((e) =>
        `${e.kind} ${e.configuration}`
      ),
      ["run-skip global-only", "run-start full"],
    );

    // 3. The same command again finishes the study, redoing nothing.
    events = [];
    const result = await runStudy(study, {
      commit: null,
      onEvent: (e) => events.push(e),
    });
    assertEquals(result.status, "completed");
    assertEquals(
      events.filter((e) => e.kind.startsWith("run-")).map((e) =>
        `${e.kind} ${e.configuration}`
      ),
      ["run-skip global-only", "run-start full", "run-done full"],
    );
    assertTrue(
      events.find((e) => e.kind === "run-start")!.message.includes("resuming"),
    );
    assertEquals(await mtimes(`${out}/runs/global-only`), finished);
    const full: StudyRun = JSON.parse(
      await Deno.readTextFile(`${out}/runs/full/done.json`),
    );
    assertEquals(full.steps, 3);
    assertEquals(full.sessions, 2);
    const steps = (await Deno.readTextFile(`${out}/runs/full/metrics.jsonl`))
      .trim().split("\n").map((l) => JSON.parse(l).step);
    assertEquals(steps, [1, 2, 3]);

    // Equal budgets, read back from each run's metadata.
    const runs: StudyRun[] = await Promise.all(
      ["global-only", "full"].map(async (name) =>
        JSON.parse(await Deno.readTextFile(`${out}/runs/${name}/done.json`))
      ),
    );
    assertEqualBudgets(runs.map((r) => r.budget));
    assertEquals(runs[0].budget, {
      epochs: 1,
      maxSteps: 3,
      batchSize: 8,
      size: 16,
      seed: 0,
      data: "procedural",
      numImages: 24,
      imageSize: 24,
    });
    assertEquals(runs.map((r) => r.steps), [3, 3]);

    // Selection on validation only: each cell's probe was chosen by its
    // validation score, and the test numbers come from that one probe.
    assertEquals(result.cells.length, 2);
    for (const cell of result.cells) {
      const { trials, bestTrial, sweep, sweepTta } = cell.report;
      assertEquals(trials.length, 2);
      const scores = trials.map((t) => t.validationTop1);
      assertTrue(scores.every((s) => s >= 0 && s <= 1));
      assertEquals(bestTrial, scores.indexOf(Math.max(...scores)));
      assertEquals(cell.report.best, trials[bestTrial].params);
      assertTrue(sweep.top1 >= 0 && sweep.top1 <= 1 && sweepTta !== null);
      assertEquals(cell.report.ttaOn, "all");
    }

    // The report.
    const md = await Deno.readTextFile(`${out}/study.md`);
    assertTrue(md.includes("| configuration | shapes | average |"));
    assertTrue(md.includes("of train, validation and test alike"), md);
    for (
      const heading of [
        "## Baseline probe",
        "## Sweep (",
        "## Sweep + 10-crop TTA",
        "## kNN",
      ]
    ) {
      assertTrue(md.includes(heading), heading);
    }
    assertEquals(
      md.match(/^\| (global-only|full) \| \d+\.\d \| /gm)?.length,
      8,
    );
    const svg = await Deno.readTextFile(`${out}/figure.svg`);
    assertTrue(svg.startsWith("<svg") && svg.trimEnd().endsWith("</svg>"));
    // 2 configurations × (1 data set + average) bars + 2 legend swatches + background.
    assertEquals(svg.match(/<rect /g)?.length, 4 + 2 + 1);
    const png = await Deno.readFile(`${out}/figure.png`);
    assertEquals([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
    const loss = await Deno.readTextFile(`${out}/loss.svg`);
    assertEquals(loss.match(/<polyline /g)?.length, 2);
    const json = JSON.parse(await Deno.readTextFile(`${out}/study.json`));
    assertEquals(json.tables.sweep.rows.length, 2);
    assertEquals(
      json.tables.sweep.rows[1].values[0],
      result.cells[1].report.sweep.top1,
    );

    // 4. Once more: everything is reused.
    events = [];
    const results = await mtimes(`${out}/results/full`);
    await runStudy(study, { commit: null, onEvent: (e) => events.push(e) });
    assertEquals(
      events.filter((e) => e.kind !== "report").map((e) => e.kind),
      ["run-skip", "run-skip", "probe-skip", "probe-skip"],
    );
    assertEquals(await mtimes(`${out}/results/full`), results);

    // A changed budget cannot reuse the runs.
    await assertRejects(
      () =>
        runStudy({ ...study, budget: { ...study.budget, seed: 1 } }, {
          commit: null,
          report: false,
        }),
      RangeError,
      'was trained with another budget ("seed" 0, the study asks for 1)',
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("runStudy() with seeds runs each (configuration, seed) once, reuses a one-seed study's runs and resumes an interrupted seed", async () => {
  await useBackend("cpu-fast");
  const out = await Deno.makeTempDir({ prefix: "study-seeds-" });
  const one: Study = parseStudy({
    title: "Seeds study",
    pretrain: {
      preset: "tiny",
      "num-images": 16,
      "image-size": 16,
      mlp: "16-16",
      "log-every": 1,
      tensorboard: false,
    },
    budget: { epochs: 1, "max-steps": 2, "batch-size": 8, size: 16, seed: 0 },
    configurations: ["global-only"],
    downstream: [{
      name: "shapes",
      data: "procedural",
      seed: 1,
      "train-images": 20,
      "test-images": 10,
      "image-size": 16,
    }],
    probe: { trials: 1, "max-epochs": 1, "baseline-epochs": 1, tta: false },
    out,
  });
  const two: Study = { ...one, seeds: 2 };
  const kinds = (events: StudyEvent[]) =>
    events.filter((e) =>
      e.kind.startsWith("run-") || e.kind.startsWith("probe-")
    )
      .map((e) => `${e.kind} ${e.configuration} ${e.seed}`);
  try {
    // 1. A one-seed study.
    await runStudy(one, { commit: null, report: false });
    const seed0 = await mtimes(`${out}/runs/global-only`);
    const cell0 = await mtimes(`${out}/results/global-only`);

    // 2. Two seeds: the first seed's run and probe are reused; the second
    // seed's run is interrupted after its first step.
    const controller = new AbortController();
    let events: StudyEvent[] = [];
    const interrupted = await runStudy(two, {
      commit: null,
      signal: controller.signal,
      onEvent: (e) => {
        events.push(e);
        if (e.kind === "step" && e.seed === 1) controller.abort();
      },
    });
    assertEquals(interrupted.status, "interrupted");
    assertEquals(kinds(events), [
      "run-skip global-only 0",
      "probe-skip global-only 0",
      "run-start global-only 1",
    ]);

    // 3. Again: the second seed resumes from its checkpoint and is probed.
    events = [];
    const result = await runStudy(two, {
      commit: null,
      onEvent: (e) => events.push(e),
    });
    assertEquals(result.status, "completed");
    assertEquals(kinds(events), [
      "run-skip global-only 0",
      "probe-skip global-only 0",
      "run-start global-only 1",
      "run-done global-only 1",
      "probe-start global-only 1",
      "probe-done global-only 1",
    ]);
    assertTrue(
      events.find((e) => e.kind === "run-start")!.message.includes(
        "global-only (seed 1): resuming",
      ),
    );
    assertEquals(await mtimes(`${out}/runs/global-only`), seed0);
    assertEquals(await mtimes(`${out}/results/global-only`), cell0);
    const done: StudyRun = JSON.parse(
      await Deno.readTextFile(`${out}/runs/global-only.seed1/done.json`),
    );
    assertEquals([done.budget.seed, done.steps, done.sessions], [1, 2, 2]);
    assertTrue(
      (await Deno.readTextFile(`${out}/runs/global-only.seed1/config.yaml`))
        .includes("seed: 1"),
    );
    assertEquals(result.runs.map((r) => r.budget.seed), [0, 1]);
    assertEquals(result.cells.map((c) => c.seed), [0, 1]);
    const saved = JSON.parse(
      await Deno.readTextFile(`${out}/results/global-only.seed1/shapes.json`),
    );
    assertEquals([saved.seed, saved.report.meta.seed], [1, 1]);
    // The two seeds trained different networks: their losses differ.
    const losses = await Promise.all(
      ["global-only", "global-only.seed1"].map(async (d) =>
        (await Deno.readTextFile(`${out}/runs/${d}/metrics.jsonl`)).trim()
          .split("\n").map((l) => JSON.parse(l).loss)
      ),
    );
    assertTrue(losses[0][0] !== losses[1][0], JSON.stringify(losses));

    // The report: mean ± SD over n = 2 seeds, each seed kept in study.json.
    const md = await Deno.readTextFile(`${out}/study.md`);
    assertTrue(md.includes("seeds 0–1 (each configuration"), md);
    assertTrue(
      md.includes("| configuration | shapes | average | n | vs best |"),
      md,
    );
    assertTrue(/\| global-only \| \d+\.\d ± \d+\.\d \| /.test(md), md);
    assertTrue(
      md.includes("with n = 2 the standard deviation is |a − b| / √2"),
    );
    const json = JSON.parse(await Deno.readTextFile(`${out}/study.json`));
    const row = json.tables.sweep.rows[0];
    assertEquals(row.seeds.map((s: { seed: number }) => s.seed), [0, 1]);
    assertEquals(
      row.seeds.map((s: { values: number[] }) => s.values[0]),
      result.cells.map((c) => c.report.sweep.top1),
    );
    assertEquals(json.cells.map((c: { seed: number }) => c.seed), [0, 1]);

    // 4. Once more: nothing is redone.
    events = [];
    await runStudy(two, {
      commit: null,
      report: false,
      onEvent: (e) => events.push(e),
    });
    assertEquals(kinds(events), [
      "run-skip global-only 0",
      "probe-skip global-only 0",
      "run-skip global-only 1",
      "probe-skip global-only 1",
    ]);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
