import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertEquals,
  assertRejects,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { svgTextBoxes } from "./figure_text.ts";
import {
  accuracySvg,
  DEFAULT_REPORT_TRANSFORMS,
  formatHeadline,
  makeProbeReport,
  type ProbeReport,
  readReport,
  reportGains,
  reportSplits,
  sweepSvg,
  writeReport,
} from "./report.ts";
import { baselineProbe, sweep, type SweepTrial } from "./sweep.ts";
import { knnAccuracy } from "./knn.ts";
import { blobs, flat } from "./testdata/reference.ts";

await useBackend("cpu");

function trial(
  index: number,
  optimizer: "sgd" | "adamw",
  lr: number,
  acc: number,
): SweepTrial {
  return {
    index,
    params: {
      optimizer,
      scheduler: "cosine",
      lr,
      weightDecay: 1e-5,
      epochs: 10,
    },
    validationTop1: acc,
    validationTop5: 1,
    seconds: 0.5,
  };
}

const TRIALS = [
  trial(0, "sgd", 0.05, 0.7),
  trial(1, "adamw", 0.003, 0.8),
  trial(2, "sgd", 2e-4, 0.4),
];
const KNN = { top1: 0.5, top5: 0.8, k: 20, temperature: 0.07 };

const REPORT: ProbeReport = {
  title: "Toy <probe>",
  meta: { weights: "ckpt.safetensors", classes: 3 },
  baseline: { top1: 0.6, top5: 0.9, perClassAccuracy: 0.55 },
  baselineParams: {
    optimizer: "sgd",
    scheduler: "cosine",
    lr: 0.01,
    weightDecay: 1e-4,
    epochs: 100,
  },
  sweep: { top1: 0.7125, top5: 0.95, perClassAccuracy: 0.7 },
  sweepTta: { top1: 0.755, top5: 0.96, perClassAccuracy: 0.74 },
  ttaOn: "all",
  ttaSweep: {
    best: trial(0, "sgd", 0.05, 0.75).params,
    bestTrial: 0,
    trials: [
      trial(0, "sgd", 0.05, 0.75),
      trial(1, "adamw", 0.003, 0.7),
      trial(2, "sgd", 2e-4, 0.45),
    ],
  },
  splits: reportSplits({ trials: TRIALS, ttaOn: "all", knn: KNN }),
  transforms: { ...DEFAULT_REPORT_TRANSFORMS },
  knn: KNN,
  best: trial(1, "adamw", 0.003, 0.8).params,
  bestTrial: 1,
  trials: TRIALS,
  confusion: [[1, 0], [0, 1]],
};

/** Checks that tags nest and every attribute value is quoted: enough XML for an SVG. */
function assertWellFormedXml(text: string): void {
  const stack: string[] = [];
  const body = text.replace(/<title>[^<]*<\/title>/g, "<title/>");
  for (const m of body.matchAll(/<(\/?)([a-zA-Z]+)([^>]*?)(\/?)>/g)) {
    const [, close, name, attrs, selfClose] = m;
    assertTrue(
      /^(\s+[a-zA-Z0-9:-]+="[^"<]*")*\s*$/.test(attrs),
      `bad attributes in <${name}${attrs}>`,
    );
    if (close) assertEquals(stack.pop(), name);
    else if (!selfClose) stack.push(name);
  }
  assertEquals(stack, []);
  assertTrue(!/&(?!lt;|gt;|amp;|quot;|apos;)/.test(text), "unescaped &");
}

Deno.test("writeReport() writes well-formed JSON, Markdown and SVG with the numbers", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeReport(`${dir}/out`, REPORT);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/out/report.json`));
    assertEquals(json.sweep, REPORT.sweep);
    assertEquals(json.trials.length, 3);
    // Gains: sweep 71.25 − 60 = 11.25 points, TTA 75.5 − 71.25 = 4.25, total 15.5.
    assertEquals(
      [json.gains.sweep, json.gains.tta, json.gains.total].map((g: number) =>
        Math.round(g * 1e4) / 100
      ),
      [11.25, 4.25, 15.5],
    );
    const md = await Deno.readTextFile(`${dir}/out/report.md`);
    for (
      const s of [
        "| baseline | 60.00 | 90.00 | 55.00 | — |",
        "71.25",
        "75.50",
        "+11.25",
        "+15.50",
        "kNN (k=20",
        "accuracy.svg",
        "sweep.svg",
        "| 1 ★ | adamw",
        "| 0 ★ | sgd",
        "| sweep + 10-crop TTA | 10-crop mean | 10-crop mean | 10-crop mean |",
        "| sweep (3 trials) | single view | single view | single view |",
        "| baseline | single view | none | single view |",
        "⌊size / 0.875⌋²",
      ]
    ) {
      assertTrue(md.includes(s), `report.md lacks ${s}`);
    }
    const bars = await Deno.readTextFile(`${dir}/out/accuracy.svg`);
    assertWellFormedXml(bars);
    assertEquals(bars.match(/<rect class="bar"/g)?.length, 3);
    assertTrue(bars.includes("Toy &lt;probe&gt;"));
    const scatter = await Deno.readTextFile(`${dir}/out/sweep.svg`);
    assertWellFormedXml(scatter);
    assertEquals(scatter.match(/<circle class="trial"/g)?.length, 3);
    assertEquals(scatter.match(/<circle class="best"/g)?.length, 1);
    assertEquals(scatter.match(/fill="#d62728" fill-opacity/g)?.length, 1); // one adamw trial
    assertEquals(await readReport(`${dir}/out`), REPORT);
    assertEquals(json.splits[2], {
      probe: "sweep + 10-crop TTA",
      train: "10-crop mean",
      validation: "10-crop mean",
      test: "10-crop mean",
    });
    assertTrue(!md.includes("test-only variant"));
    await Deno.writeTextFile(`${dir}/bad.json`, "{}");
    await assertRejects(
      () => readReport(`${dir}/bad.json`),
      TypeError,
      "probe report",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("formatHeadline() prints the table and the gains in points", () => {
  const text = formatHeadline(REPORT);
  const lines = text.split("\n");
  assertEquals(lines.length, 6);
  assertTrue(lines[1].startsWith("baseline") && lines[1].includes("60.00"));
  assertTrue(lines[2].includes("71.25") && lines[2].endsWith("+11.25"));
  assertTrue(lines[3].includes("75.50") && lines[3].endsWith("+15.50"));
  assertTrue(lines[4].startsWith("kNN") && lines[4].includes("50.00"));
  assertEquals(
    lines[5],
    "gain in top-1: sweep +11.25 pts, TTA +4.25 pts, total +15.50 pts",
  );
  const testOnly = formatHeadline({ ...REPORT, ttaOn: "test" });
  assertTrue(
    testOnly.split("\n")[3].startsWith("sweep + 10-crop TTA (test split only)"),
  );
  const noTta = formatHeadline({ ...REPORT, sweepTta: null, knn: null });
  assertEquals(noTta.split("\n").length, 4);
  assertEquals(reportGains({ ...REPORT, sweepTta: null }).tta, null);
});

Deno.test("makeProbeReport() assembles baseline, sweep, TTA and kNN runs", () => {
  const rng = new Rng(5);
  const centres = Array.from(
    { length: 3 },
    () => Array.from({ length: 4 }, () => rng.normal(0, 2)),
  );
  const mk = (seed: number, n: number) => {
    const d = blobs(centres, n, 0.5, new Rng(seed));
    return {
      features: tf.tensor2d(flat(d.x), [d.x.length, 4]),
      labels: Int32Array.from(d.y),
    };
  };
  const train = mk(1, 20), test = mk(2, 10), tta = mk(3, 10);
  const base = baselineProbe(train, test, { epochs: 3 });
  const swept = sweep(train, test, {
    trials: 3,
    maxEpochs: 3,
    extraTestSets: { tta },
  });
  const knn = knnAccuracy(train, test);
  const report = makeProbeReport({
    baseline: base,
    sweep: swept,
    ttaSet: "tta",
    knn,
    meta: { dim: 4 },
  });
  assertEquals(report.sweep.top1, swept.test.top1);
  assertEquals(report.sweepTta?.top1, swept.extra.tta.top1);
  assertEquals(report.knn?.k, 20);
  assertEquals(report.confusion, swept.extra.tta.confusion);
  assertEquals(report.trials.length, 3);
  assertEquals(report.ttaOn, "test");
  assertEquals(report.splits[2].train, "single view");
  assertEquals(report.splits[2].test, "10-crop mean");
  const ttaSweep = sweep(tta, tta, { trials: 2, maxEpochs: 2 });
  const all = makeProbeReport({ baseline: base, sweep: swept, ttaSweep });
  assertEquals(all.ttaOn, "all");
  assertEquals(all.sweepTta?.top1, ttaSweep.test.top1);
  assertEquals(all.ttaSweep?.trials, ttaSweep.trials);
  assertEquals(all.confusion, ttaSweep.test.confusion);
  assertThrows(
    () =>
      makeProbeReport({
        baseline: base,
        sweep: swept,
        ttaSweep,
        ttaSet: "tta",
      }),
    TypeError,
    "both",
  );
  assertThrows(
    () => makeProbeReport({ baseline: base, sweep: swept, ttaSet: "nope" }),
    RangeError,
    "nope",
  );
  tf.dispose([train.features, test.features, tta.features]);
});

Deno.test("readReport() reads a report written before ttaOn as the test-only TTA variant", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { ttaOn: _a, ttaSweep: _b, splits: _c, transforms: _d, ...old } =
      REPORT;
    await Deno.writeTextFile(`${dir}/report.json`, JSON.stringify(old));
    const read = await readReport(dir);
    assertEquals(read.ttaOn, "test");
    assertEquals(read.ttaSweep, null);
    assertEquals(read.splits[2], {
      probe: "sweep + 10-crop TTA (test split only)",
      train: "single view",
      validation: "single view",
      test: "10-crop mean",
    });
    await writeReport(dir, read);
    const md = await Deno.readTextFile(`${dir}/report.md`);
    assertTrue(md.includes("**test-only variant**"), md);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("accuracySvg() and sweepSvg() keep every label inside the canvas, apart", () => {
  for (
    const report of [
      REPORT,
      { ...REPORT, ttaOn: "test" as const },
      { ...REPORT, sweepTta: null, ttaOn: null },
    ]
  ) {
    for (const svg of [accuracySvg(report), sweepSvg(report)]) {
      const width = Number(svg.match(/<svg[^>]* width="(\d+)"/)![1]);
      const height = Number(svg.match(/<svg[^>]* height="(\d+)"/)![1]);
      const boxes = svgTextBoxes(svg);
      assertTrue(boxes.length > 5);
      for (const b of boxes) {
        assertTrue(
          b.x >= 0 && b.y >= 0 && b.x + b.width <= width &&
            b.y + b.height <= height,
          `"${b.text}" at ${
            JSON.stringify(b)
          } leaves the ${width}×${height} SVG`,
        );
      }
      // Labels on one line do not run into each other.
      for (const a of boxes) {
        for (const b of boxes) {
          if (a === b || Math.abs(a.y - b.y) > 1) continue;
          assertTrue(
            a.x + a.width <= b.x || b.x + b.width <= a.x,
            `"${a.text}" overlaps "${b.text}"`,
          );
        }
      }
    }
  }
  assertTrue(
    accuracySvg({ ...REPORT, ttaOn: "test" }).includes(">TTA (test only)<"),
  );
});
