import { Image } from "imagescript";
import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";
import {
  DEFAULT_REPORT_TRANSFORMS,
  type ProbeReport,
} from "@scaling-vicreg/probe";
import {
  fontText,
  readText,
  svgTextBoxes,
} from "@scaling-vicreg/probe/figure-text";
import { parseStudy, type StudyResult, TINY_STUDY } from "./mod.ts";
import {
  formatStudyMarkdown,
  formatStudyTable,
  lossCurvesSvg,
  studyBarChartPng,
  studyBarChartPngLabels,
  studyBarChartSvg,
  studyJson,
  type StudyTable,
  studyTable,
} from "./mod.ts";

function report(top1: number, tta: number | null): ProbeReport {
  const m = (t: number) => ({ top1: t, top5: 1, perClassAccuracy: t });
  const params = {
    optimizer: "sgd" as const,
    scheduler: "cosine" as const,
    lr: 0.01,
    weightDecay: 1e-5,
    epochs: 10,
  };
  return {
    title: "t",
    meta: {},
    baseline: m(top1 / 2),
    baselineParams: params,
    sweep: m(top1),
    sweepTta: tta === null ? null : m(tta),
    ttaOn: tta === null ? null : "all",
    ttaSweep: null,
    splits: [],
    transforms: { ...DEFAULT_REPORT_TRANSFORMS },
    knn: { top1: top1 / 4, top5: 1, k: 20, temperature: 0.07 },
    best: params,
    bestTrial: 0,
    trials: [{
      index: 0,
      params,
      validationTop1: 0.5,
      validationTop5: 1,
      seconds: 0.1,
    }],
    confusion: [],
  };
}

// Hand-made numbers: full = (0.6, 0.4) → 50 %; global-only = (0.2, 0.3) → 25 %.
function result(): StudyResult {
  const study = parseStudy({
    configurations: ["global-only", "full"],
    downstream: [{ name: "a" }, { name: "b" }],
    budget: { "batch-size": 8 },
    out: "/nonexistent",
  });
  const cell = (c: string, d: string, t: number) => ({
    configuration: c,
    seed: 0,
    dataset: d,
    probe: study.probe,
    data: study.downstream.find((x) => x.name === d)!,
    report: report(t, t + 0.1),
    seconds: 1,
  });
  return {
    status: "completed",
    study,
    runs: [],
    cells: [
      cell("global-only", "a", 0.2),
      cell("global-only", "b", 0.3),
      cell("full", "a", 0.6),
      cell("full", "b", 0.4),
    ],
    backend: "cpu",
    commit: null,
    wallSeconds: 3,
  };
}

Deno.test("studyTable() takes each protocol's top-1 and averages over data sets", () => {
  const r = result();
  const sweep = studyTable(r, "sweep");
  assertEquals(sweep.columns, ["a", "b"]);
  assertEquals(sweep.rows.map((x) => x.configuration), ["global-only", "full"]);
  assertEquals(sweep.rows[0].values, [0.2, 0.3]);
  assertTrue(Math.abs(sweep.rows[0].average! - 0.25) < 1e-12);
  assertTrue(Math.abs(sweep.rows[1].average! - 0.5) < 1e-12);
  assertEquals(studyTable(r, "baseline").rows[1].values, [0.3, 0.2]);
  assertEquals(studyTable(r, "knn").rows[1].values, [0.15, 0.1]);
  r.cells.pop();
  assertEquals(studyTable(r, "sweep").rows[1].average, null);
});

Deno.test("formatStudyTable() writes percentages and bolds the best average", () => {
  assertEquals(
    formatStudyTable(studyTable(result(), "sweep")),
    [
      "| configuration | a | b | average |",
      "|---|--:|--:|--:|",
      "| global-only | 20.0 | 30.0 | 25.0 |",
      "| full | 60.0 | 40.0 | **50.0** |",
    ].join("\n"),
  );
});

Deno.test("studyBarChartSvg() draws one bar per configuration and group", () => {
  const svg = studyBarChartSvg(studyTable(result(), "sweepTta"), "T & t");
  // 2 configurations × (2 data sets + average) bars, 2 swatches, background.
  assertEquals(svg.match(/<rect /g)!.length, 6 + 2 + 1);
  assertTrue(svg.includes("T &amp; t"));
  const heights = [
    ...svg.matchAll(
      /<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)" fill="#/g,
    ),
  ]
    .map((m) => Number(m[1]));
  // Bars are proportional to top-1: full's average (60 %) is twice global-only's "a" (30 %).
  assertTrue(Math.abs(heights[0] * 2 - heights[5]) < 0.3, String(heights));
});

Deno.test("studyBarChartPng() encodes a PNG with the bars' colours and readable text", async () => {
  const table = studyTable(result(), "sweep");
  const title = "Top-1 (%) — Sweep";
  const png = await studyBarChartPng(table, title);
  const image = await Image.decode(png);
  const where = studyBarChartPngLabels(table, title);
  assertEquals([image.width, image.height], [where.width, where.height]);
  assertTrue(image.width >= 960);
  const colours = new Set<number>();
  for (const [, , c] of image.iterateWithColors()) colours.add(c);
  assertTrue(colours.has(0x4e79a7ff) && colours.has(0xf28e2bff));
  // Title, axis labels, data set names and legend, each read back from the
  // pixels with the font's glyphs, and each inside the canvas.
  const roles = new Set(where.labels.map((l) => l.role));
  assertEquals(
    [...roles].sort(),
    ["axis", "group", "legend", "tick", "title"],
  );
  for (const l of where.labels) {
    assertTrue(
      l.x >= 0 && l.y >= 0 && l.x + l.width <= image.width &&
        l.y + l.height <= image.height,
      `${l.text} at ${
        JSON.stringify(l)
      } leaves the ${image.width}×${image.height} canvas`,
    );
    const read = readText(image, l.x, l.y, fontText(l.text).length, {
      scale: l.scale,
    });
    assertEquals(read, fontText(l.text));
  }
  const texts = where.labels.map((l) => l.text);
  for (const t of [title, "top-1 (%)", "a", "b", "average", "full"]) {
    assertTrue(texts.includes(t), t);
  }
  assertTrue(texts.includes("global-only") && texts.includes("full"));
  // The title region really has ink (dark pixels), the corner does not.
  const t = where.labels.find((l) => l.role === "title")!;
  const dark = (x0: number, y0: number, w: number, h: number) => {
    let n = 0;
    for (let y = y0; y < y0 + h; y++) {
      for (let x = x0; x < x0 + w; x++) {
        const i = (y * image.width + x) * 4;
        if (image.bitmap[i] + image.bitmap[i + 1] + image.bitmap[i + 2] < 200) {
          n++;
        }
      }
    }
    return n;
  };
  assertTrue(dark(t.x, t.y, t.width, t.height) > 100);
  assertEquals(dark(0, 0, 8, 8), 0);
});

Deno.test("studyBarChartSvg() and studyBarChartPng() keep every label of the tiny study inside the canvas", async () => {
  // The configurations of TINY_STUDY: "full-feature" used to be cut at the
  // right edge of the SVG's legend.
  const study = parseStudy({
    configurations: TINY_STUDY.configurations.map((c) => c.name),
    downstream: TINY_STUDY.downstream.map((d) => ({ name: d.name })),
    budget: { "batch-size": 8 },
    out: "/nonexistent",
  });
  const table: StudyTable = {
    protocol: "sweepTta",
    columns: study.downstream.map((d) => d.name),
    rows: study.configurations.map((c, i) => ({
      configuration: c.name,
      values: study.downstream.map(() => 0.2 + 0.1 * i),
      average: 0.2 + 0.1 * i,
    })),
  };
  const title = "Top-1 (%) — Sweep + 10-crop TTA";
  const svg = studyBarChartSvg(table, title);
  const width = Number(svg.match(/<svg[^>]* width="(\d+)"/)![1]);
  const height = Number(svg.match(/<svg[^>]* height="(\d+)"/)![1]);
  const boxes = svgTextBoxes(svg);
  for (const b of boxes) {
    assertTrue(
      b.x >= 0 && b.y >= 0 && b.x + b.width <= width &&
        b.y + b.height <= height,
      `"${b.text}" at ${JSON.stringify(b)} leaves the ${width}×${height} SVG`,
    );
  }
  const legend = boxes.filter((b) =>
    study.configurations.some((c) => c.name === b.text)
  );
  assertEquals(legend.length, study.configurations.length);
  // Legend entries do not overlap each other.
  for (const a of legend) {
    for (const b of legend) {
      if (a === b) continue;
      const apart = a.x + a.width <= b.x || b.x + b.width <= a.x ||
        a.y + a.height <= b.y || b.y + b.height <= a.y;
      assertTrue(apart, `${a.text} overlaps ${b.text}`);
    }
  }
  const png = await Image.decode(await studyBarChartPng(table, title));
  const where = studyBarChartPngLabels(table, title);
  const fullFeature = where.labels.find((l) => l.text === "full-feature")!;
  assertTrue(fullFeature.x + fullFeature.width <= png.width);
  assertEquals(
    readText(png, fullFeature.x, fullFeature.y, 12, { scale: 2 }),
    "full-feature",
  );
});

Deno.test("lossCurvesSvg() draws one polyline per run and keeps its labels inside", () => {
  const svg = lossCurvesSvg([
    { name: "a", points: [[1, 3], [2, 2]] },
    { name: "b", points: [[1, 4], [2, NaN]] },
  ], "loss");
  assertEquals(svg.match(/<polyline /g)!.length, 2);
  const long = lossCurvesSvg(
    ["global-only", "full-location", "a-much-longer-configuration-name"].map((
      name,
      i,
    ) => ({ name, points: [[1, 3 + i], [2, 2 + i]] as [number, number][] })),
    "Training loss",
  );
  const width = Number(long.match(/<svg[^>]* width="(\d+)"/)![1]);
  const height = Number(long.match(/<svg[^>]* height="(\d+)"/)![1]);
  const boxes = svgTextBoxes(long);
  assertTrue(boxes.some((b) => b.text === "a-much-longer-configuration-name"));
  for (const b of boxes) {
    assertTrue(
      b.x >= 0 && b.y >= 0 && b.x + b.width <= width &&
        b.y + b.height <= height,
      `"${b.text}" leaves the ${width}×${height} SVG`,
    );
  }
});

Deno.test("formatStudyMarkdown() and studyJson() carry the same numbers", () => {
  const r = result();
  const md = formatStudyMarkdown(r);
  assertTrue(md.includes("| full | 70.0 | 50.0 | **60.0** |"), md);
  assertTrue(md.includes("Commit `unknown`"));
  const json = studyJson(r) as {
    tables: Record<string, { rows: { average: number }[] }>;
  };
  assertTrue(Math.abs(json.tables.sweepTta.rows[1].average - 0.6) < 1e-12);
});

// Hand-made numbers over three seeds (sweep top-1 on data sets a, b):
// full         (0.6, 0.4) (0.5, 0.3) (0.7, 0.5): averages 0.5, 0.4, 0.6 → 50 ± 10
// global-only  (0.45, 0.35) (0.5, 0.4) (0.55, 0.45): 0.4, 0.45, 0.5 → 45 ± 5,
//              0.05 from full ≤ max(10, 5) points: within noise
// local-only   (0.1, 0.3) × 3: 0.2 each → 20 ± 0, 0.3 from full > 0.1: below
function seededResult(seeds: number): StudyResult {
  const study = parseStudy({
    configurations: ["global-only", "local-only", "full"],
    downstream: [{ name: "a" }, { name: "b" }],
    budget: { "batch-size": 8 },
    seeds,
    out: "/nonexistent",
  });
  const top1: Record<string, [number, number][]> = {
    "global-only": [[0.45, 0.35], [0.5, 0.4], [0.55, 0.45]],
    "local-only": [[0.1, 0.3], [0.1, 0.3], [0.1, 0.3]],
    "full": [[0.6, 0.4], [0.5, 0.3], [0.7, 0.5]],
  };
  const cells = [];
  for (let seed = 0; seed < seeds; seed++) {
    for (const c of study.configurations) {
      for (const [j, d] of study.downstream.entries()) {
        cells.push({
          configuration: c.name,
          seed,
          dataset: d.name,
          probe: study.probe,
          data: d,
          report: report(top1[c.name][seed][j], null),
          seconds: 1,
        });
      }
    }
  }
  return {
    status: "completed",
    study,
    runs: [],
    cells,
    backend: "cpu",
    commit: null,
    wallSeconds: 3,
  };
}

Deno.test("studyTable() over seeds gives each row's mean, sample standard deviation, n and mark against the best", () => {
  const table = studyTable(seededResult(3), "sweep");
  const [g, l, f] = table.rows;
  const close = (a: number | null | undefined, b: number) =>
    assertTrue(a != null && Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
  close(f.average, 0.5);
  close(f.averageSummary!.sd, 0.1);
  close(f.values[0], 0.6);
  close(f.spreads![1], 0.1);
  close(g.average, 0.45);
  close(g.averageSummary!.sd, 0.05);
  close(l.average, 0.2);
  close(l.averageSummary!.sd, 0);
  assertEquals(table.rows.map((r) => r.averageSummary!.n), [3, 3, 3]);
  assertEquals(table.rows.map((r) => r.mark), [
    "within-noise",
    "below",
    "best",
  ]);
  assertEquals(f.seeds!.map((s) => [s.seed, s.values]), [
    [0, [0.6, 0.4]],
    [1, [0.5, 0.3]],
    [2, [0.7, 0.5]],
  ]);
});

Deno.test("formatStudyTable() over seeds writes mean ± SD, n, the marks and the rule", () => {
  const md = formatStudyTable(studyTable(seededResult(3), "sweep"));
  const lines = md.split("\n");
  assertEquals(lines.slice(0, 5), [
    "| configuration | a | b | average | n | vs best |",
    "|---|--:|--:|--:|--:|---|",
    "| global-only | 50.0 ± 5.0 | 40.0 ± 5.0 | 45.0 ± 5.0 | 3 | within noise |",
    "| local-only | 10.0 ± 0.0 | 30.0 ± 0.0 | 20.0 ± 0.0 | 3 | below |",
    "| full | 60.0 ± 10.0 | 40.0 ± 10.0 | **50.0 ± 10.0** | 3 | best |",
  ]);
  assertTrue(md.includes("sample standard deviation (n − 1)"), md);
  assertTrue(
    md.includes(
      "within noise of each other when the difference of their mean averages is at most the larger of their two standard deviations",
    ),
    md,
  );
  assertTrue(md.includes("(average): global-only ≈ full."), md);
  assertTrue(!md.includes("n = 2"), md);
});

Deno.test("formatStudyTable() over two seeds says what an SD of two values is, and one seed keeps today's table", () => {
  // Two seeds: full 0.5, 0.4 → 45 ± 7.1; global-only 0.4, 0.45 → 42.5 ± 3.5;
  // local-only 0.2, 0.2 → 20 ± 0.
  const md = formatStudyTable(studyTable(seededResult(2), "sweep"));
  assertTrue(
    md.includes(
      "| full | 55.0 ± 7.1 | 35.0 ± 7.1 | **45.0 ± 7.1** | 2 | best |",
    ),
    md,
  );
  assertTrue(
    md.includes("with n = 2 the standard deviation is |a − b| / √2"),
    md,
  );
  // One seed: the one-seed table, no spread, no marks.
  assertEquals(
    formatStudyTable(studyTable(seededResult(1), "sweep")),
    [
      "| configuration | a | b | average |",
      "|---|--:|--:|--:|",
      "| global-only | 45.0 | 35.0 | 40.0 |",
      "| local-only | 10.0 | 30.0 | 20.0 |",
      "| full | 60.0 | 40.0 | **50.0** |",
    ].join("\n"),
  );
});

Deno.test("studyTable() over seeds counts only the seeds a row has finished", () => {
  // The second seed of full lost its cell on b (an interrupted study): its
  // average is over seeds 0 and 2 (0.5, 0.6 → 55 ± 7.1), a over all three
  // (0.6), b over seeds 0 and 2 (0.45).
  const r = seededResult(3);
  r.cells = r.cells.filter((c) =>
    !(c.configuration === "full" && c.seed === 1 && c.dataset === "b")
  );
  const full = studyTable(r, "sweep").rows[2];
  assertEquals(full.averageSummary!.n, 2);
  assertEquals(full.seeds!.map((s) => s.average === null), [
    false,
    true,
    false,
  ]);
  assertTrue(Math.abs(full.average! - 0.55) < 1e-12);
  assertTrue(Math.abs(full.values[0]! - 0.6) < 1e-12);
  assertTrue(Math.abs(full.values[1]! - 0.45) < 1e-12);
  assertTrue(
    formatStudyTable(studyTable(r, "sweep")).includes(
      "| **55.0 ± 7.1** | 2 | best |",
    ),
  );
});

Deno.test("formatStudyMarkdown() over seeds names the seeds and gives runs and cells their seed", () => {
  const r = seededResult(3);
  const md = formatStudyMarkdown(r);
  assertTrue(
    md.includes(
      "seeds 0–2 (each configuration pretrained and probed once per seed",
    ),
    md,
  );
  assertTrue(md.includes("| full | 60.0 ± 10.0 |"), md);
  assertTrue(md.includes("| configuration | seed | data set |"), md);
  assertTrue(md.includes("| full | 2 | b |"), md);
  assertTrue(md.includes("bars are the means over the seeds"), md);
  const json = studyJson(r) as { cells: { seed: number }[] };
  assertEquals(json.cells.map((c) => c.seed), r.cells.map((c) => c.seed));
});
