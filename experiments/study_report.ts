/**
 * The report of an ablation study: `study.md` with one Table-1-style table
 * per probe protocol (rows = configurations, columns = data sets + average),
 * a grouped bar chart like the paper's Figure 2 (hand-written SVG, and a PNG
 * rasterised with imagescript), every run's loss curve on one SVG plot, and
 * the run metadata; `study.json` holds the same numbers. The PNG's text is
 * drawn with the project's bitmap font, and every label is laid out inside
 * the canvas.
 *
 * @module
 */
import { writeFileAtomic } from "@scaling-vicreg/backend/fs";
import type { StudyResult } from "./study_result.ts";
import { readMetrics } from "@scaling-vicreg/train/run-metrics";
import { cellPercent as pct } from "./_study_style.ts";
import {
  formatStudyTable,
  STUDY_PROTOCOLS,
  type StudyProtocol,
  studyTable,
} from "./study_table.ts";
import { studyBarChartPng, studyBarChartSvg } from "./study_bar_chart.ts";
import { type LossCurve, lossCurvesSvg } from "./study_loss_curves.ts";
import { runDirOf, studySeeds } from "./study_budget.ts";

/** The protocol the figure shows: sweep + TTA when it was run, else sweep. */
function figureProtocol(result: StudyResult): StudyProtocol {
  return result.cells.some((c) => c.report.sweepTta !== null)
    ? "sweepTta"
    : "sweep";
}

/** Which features each split gets, in words, for `study.md`. */
function studyTtaSentence(probe: StudyResult["study"]["probe"]): string {
  const single =
    "The baseline, the sweep and kNN use single-view features (bicubic resize to the crop size) for train, validation and test.";
  if (!probe.tta) return single;
  return probe.ttaOn === "test"
    ? `${single} Sweep + 10-crop TTA is the **test-only variant**: the plain sweep's classifier applied to 10-crop mean test features (a train/test shift).`
    : `${single} Sweep + 10-crop TTA is a second sweep on 10-crop mean features (resize to ⌊size / 0.875⌋², four corner and centre crops and their mirror images, the ten feature vectors averaged) of train, validation and test alike, as the paper's code.`;
}

/**
 * The Markdown of `study.md`: setup, one table per protocol, the figures,
 * notes and the run metadata.
 *
 * @param result The study result.
 * @returns Markdown text.
 */
export function formatStudyMarkdown(result: StudyResult): string {
  const { study } = result;
  const b = study.budget;
  const seeds = studySeeds(study);
  const many = seeds.length > 1;
  const seedText = many
    ? `seeds ${seeds[0]}–${
      seeds.at(-1)
    } (each configuration pretrained and probed once per seed; the downstream data sets are the same for every seed)`
    : `seed ${b.seed}`;
  const lines = [
    `# ${study.title}`,
    "",
    `Status: **${result.status}**. Every configuration was pretrained with the same budget and ${
      many ? "seeds" : "seed"
    }: ${b.epochs} epoch(s)${
      b.maxSteps > 0 ? `, at most ${b.maxSteps} steps` : ""
    }, batch ${b.batchSize}, ${b.size} px crops, ${seedText}, on \`${study.pretrainData}\`. Probes: ${study.probe.trials} sweep trials scored on a validation split of each training set (the test split is used once, by the selected probe), ≤ ${study.probe.maxEpochs} epochs, baseline ${study.probe.baselineEpochs} epochs. ${
      studyTtaSentence(study.probe)
    } Numbers are top-1 accuracy (%) on each data set's test split.`,
    "",
    "Data sets:",
    "",
    ...study.downstream.map((d) =>
      `- **${d.name}**: \`${d.data}\`${d.kind ? ` (${d.kind})` : ""}${
        d.data === "procedural"
          ? `, seed ${d.seed}, ${d.trainImages} train / ${d.testImages} test images of ${d.imageSize} px`
          : ""
      }`
    ),
    "",
    "Configurations:",
    "",
    ...study.configurations.map((c) =>
      `- **${c.name}**: ${c.description}${
        Object.keys(c.flags).length
          ? ` — \`${
            Object.entries(c.flags).map(([k, v]) => `--${k} ${v}`).join(" ")
          }\``
          : ""
      }`
    ),
  ];
  for (const p of STUDY_PROTOCOLS) {
    const table = studyTable(result, p.key);
    if (table.rows.every((r) => r.values.every((v) => v === null))) continue;
    lines.push("", `## ${p.label}`, "", formatStudyTable(table));
  }
  lines.push(
    "",
    "## Figures",
    "",
    `![Top-1 per data set and configuration](figure.svg)`,
    "",
    `(\`figure.png\` is the same chart as a bitmap, at twice the resolution.${
      many
        ? " Its bars are the means over the seeds, without their spread."
        : ""
    })`,
    "",
    `![Training loss of every run](loss.svg)`,
    "",
    `The loss curves show the total logged loss (VICReg, plus α × the local loss where it is used), so runs with the local loss sit higher${
      many ? `; they are the runs of the first seed (${seeds[0]})` : ""
    }.`,
  );
  if (study.notes.length) {
    lines.push("", "## Notes", "", ...study.notes.map((n) => `- ${n}`));
  }
  lines.push(
    "",
    "## Runs",
    "",
    `Commit \`${
      result.commit ?? "unknown"
    }\`, backend ${result.backend}, this invocation ${
      result.wallSeconds.toFixed(0)
    } s.`,
    "",
    `| configuration |${
      many ? " seed |" : ""
    } arch | steps | pretrain time (s) | images/s | final loss | sessions |`,
    `|---|${many ? "--:|" : ""}---|--:|--:|--:|--:|--:|`,
    ...result.runs.map((r) =>
      `| ${r.configuration} |${
        many ? ` ${r.budget.seed} |` : ""
      } ${r.arch} | ${r.steps} | ${r.wallSeconds.toFixed(0)} | ${
        r.imagesPerSecond.toFixed(1)
      } | ${r.finalLoss?.toFixed(3) ?? "–"} | ${r.sessions} |`
    ),
    "",
    `| configuration |${
      many ? " seed |" : ""
    } data set | probe time (s) | selected probe (validation top-1) |`,
    `|---|${many ? "--:|" : ""}---|--:|---|`,
    ...result.cells.map((c) => {
      const t = c.report.trials[c.report.bestTrial];
      return `| ${c.configuration} |${
        many ? ` ${c.seed} |` : ""
      } ${c.dataset} | ${
        c.seconds.toFixed(0)
      } | ${c.report.best.optimizer}, ${c.report.best.scheduler}, lr ${
        c.report.best.lr.toPrecision(2)
      }, wd ${
        c.report.best.weightDecay.toPrecision(2)
      }, ${c.report.best.epochs} ep (${pct(t?.validationTop1 ?? null)}) |`;
    }),
  );
  return lines.join("\n") + "\n";
}

/**
 * The machine-readable report (`study.json`): the study, the metadata, every
 * table (with each seed's numbers, the spreads and the within-noise marks)
 * and every cell's seed, headline numbers and sweep trials.
 *
 * @param result The study result.
 * @returns A JSON-serialisable object.
 */
export function studyJson(result: StudyResult): Record<string, unknown> {
  return {
    status: result.status,
    commit: result.commit,
    backend: result.backend,
    wallSeconds: result.wallSeconds,
    study: result.study,
    tables: Object.fromEntries(
      STUDY_PROTOCOLS.map((p) => [p.key, studyTable(result, p.key)]),
    ),
    runs: result.runs,
    cells: result.cells.map((c) => ({
      configuration: c.configuration,
      seed: c.seed,
      dataset: c.dataset,
      seconds: c.seconds,
      baseline: c.report.baseline,
      sweep: c.report.sweep,
      sweepTta: c.report.sweepTta,
      ttaOn: c.report.ttaOn,
      splits: c.report.splits,
      knn: c.report.knn,
      best: c.report.best,
      bestTrial: c.report.bestTrial,
      trials: c.report.trials,
    })),
  };
}

/**
 * Writes `study.md`, `study.json`, `figure.svg`, `figure.png` and `loss.svg`
 * to the study's directory (each atomically), reading each run's
 * `metrics.jsonl` for the loss curves.
 *
 * @param dir The study's output directory.
 * @param result The study result.
 * @returns The paths written.
 */
export async function writeStudyReport(
  dir: string,
  result: StudyResult,
): Promise<string[]> {
  const table = studyTable(result, figureProtocol(result));
  const label = STUDY_PROTOCOLS.find((p) => p.key === table.protocol)!.label;
  const figureTitle = `Top-1 (%) — ${label}`;
  const curves: LossCurve[] = [];
  // One curve per configuration: the runs of the first seed.
  const first = result.study.budget.seed;
  for (const r of result.runs.filter((r) => r.budget.seed === first)) {
    const metrics = await readMetrics(
      runDirOf(result.study, r.configuration, first),
    );
    curves.push({
      name: r.configuration,
      points: metrics.map((m) => [m.step, m.loss]),
    });
  }
  const files: [string, string | Uint8Array][] = [
    ["study.md", formatStudyMarkdown(result)],
    ["study.json", JSON.stringify(studyJson(result), null, 2) + "\n"],
    ["figure.svg", studyBarChartSvg(table, figureTitle)],
    ["figure.png", await studyBarChartPng(table, figureTitle)],
    ["loss.svg", lossCurvesSvg(curves, "Training loss")],
  ];
  await Deno.mkdir(dir, { recursive: true });
  for (const [name, data] of files) {
    await writeFileAtomic(`${dir}/${name}`, data);
  }
  return files.map(([name]) => `${dir}/${name}`);
}
