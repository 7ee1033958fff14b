import { Image } from "imagescript";
import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";
import {
  DEFAULT_REPORT_TRANSFORMS,
  type ProbeReport,
} from "@scaling-vicreg/probe";
import { parseStudy, type StudyResult } from "./study.ts";
import {
  formatStudyMarkdown,
  formatStudyTable,
  lossCurvesSvg,
  studyBarChartPng,
  studyBarChartSvg,
  studyJson,
  studyTable,
} from "./study_report.ts";

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

Deno.test("studyBarChartPng() encodes a PNG with the bars' colours", async () => {
  const png = await studyBarChartPng(studyTable(result(), "sweep"));
  const image = await Image.decode(png);
  assertTrue(image.width >= 480 && image.height === 320);
  const colours = new Set<number>();
  for (const [, , c] of image.iterateWithColors()) colours.add(c);
  assertTrue(colours.has(0x4e79a7ff) && colours.has(0xf28e2bff));
});

Deno.test("lossCurvesSvg() draws one polyline per run", () => {
  const svg = lossCurvesSvg([
    { name: "a", points: [[1, 3], [2, 2]] },
    { name: "b", points: [[1, 4], [2, NaN]] },
  ], "loss");
  assertEquals(svg.match(/<polyline /g)!.length, 2);
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
