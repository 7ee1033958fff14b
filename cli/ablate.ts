/**
 * `vicreg ablate`: the paper's Table 1 protocol end to end — several
 * pretraining configurations with one budget, each probed on every downstream
 * set — resumable, with a Markdown/JSON report and figures.
 *
 * @module
 */
import {
  BACKEND_CHOICES,
  BACKEND_HELP,
  useBackend,
} from "@scaling-vicreg/backend";
import {
  formatStudyTable,
  readStudyFile,
  runDirOf,
  runStudy,
  type Study,
  STUDY_PRESETS,
  STUDY_PROTOCOLS,
  studyTable,
} from "@scaling-vicreg/experiments";
import { type Command, UsageError } from "./args.ts";
import { probeBackendFor } from "./_backend.ts";
import { writeProbeEvents } from "./_probe_events.ts";

/** The `ablate` subcommand. */
export const ablateCommand: Command = {
  name: "ablate",
  summary:
    "Run an ablation study (Table 1): configurations × data sets, one budget",
  usage: "(--config study.yaml | --preset tiny) [flags]",
  description: `
Pretrains every configuration of a study with the same budget and seed, probes
each backbone on every downstream data set (baseline probe, sweep selected on a
validation split, sweep on 10-crop mean features of train, validation and test
as the paper's code, kNN), and writes study.md, study.json,
figure.svg, figure.png and loss.svg to the output directory. Each configuration
is an ordinary run directory under <out>/runs/<name>; run the same command again
after an interruption (Ctrl-C finishes the step and checkpoints) and it
continues without redoing finished runs or probes.

Seeds: --seeds N (or seeds: N in the study file) pretrains and probes every
configuration with seeds S … S+N-1 (S = budget.seed), one seed after another;
the first seed's runs are <out>/runs/<name> (those of a one-seed study, reused),
the others <out>/runs/<name>.seed<s>. The tables then give each row's mean ±
sample standard deviation over its n seeds, and mark the rows within noise of
the best row: two rows are within noise when the difference of their mean
averages is at most the larger of their two standard deviations. Adding seeds
to a finished study reuses every finished (configuration, seed) run and probe.

TensorBoard: each run writes its event file (as vicreg pretrain), and each
probed (configuration, data set) writes the scalars of vicreg probe
(probe/<row>/top1 at the run's last step, probe/sweep/trial_validation_top1)
to <out>/runs/<name>/probe-<data set>, so tensorboard --logdir <out>/runs
shows every configuration side by side. pretrain: { tensorboard: false } in
the study file turns both off.

A study file (YAML):
  title: My study
  pretrain-data: procedural            # or imagefolder:/data/imagenet
  pretrain: { preset: tiny }           # keys shared by every configuration
  budget: { epochs: 10, batch-size: 64, size: 32, seed: 0 }
  seeds: 3                             # seeds 0, 1, 2 per configuration (default 1)
  configurations:                      # built-in: resnet34 global-only local-only
    - global-only                      #   full full-location full-feature
    - full
    - { name: wide, flags: { mlp: 512-512-512, use-local-loss: true } }
  downstream:
    - { name: shapes, data: procedural, seed: 1, train-images: 500, test-images: 200 }
    - { name: cub, data: /data/CUB_200_2011, kind: cub200 }
  probe: { trials: 20, max-epochs: 100, tta: true }   # tta-on: all (default) | test
  out: runs/my-study

Examples:
  vicreg ablate --preset tiny --out runs/study-tiny
  vicreg ablate --preset tiny --seeds 3     # mean ± SD over seeds 0, 1, 2
  vicreg ablate --config study.yaml --backend wasm`,
  flags: {
    config: { type: "string", help: "Study file (YAML)" },
    preset: {
      type: "string",
      help: "Built-in study instead of --config",
      choices: Object.keys(STUDY_PRESETS),
    },
    out: { type: "string", help: "Output directory (overrides the study's)" },
    backend: {
      type: "string",
      help: BACKEND_HELP,
      default: "auto",
      choices: BACKEND_CHOICES,
    },
    "max-steps": {
      type: "int",
      help:
        "Cap every run at this many steps (for quick looks; part of the budget, so use a fresh --out)",
    },
    seeds: {
      type: "int",
      help:
        "Pretrain and probe every configuration with this many seeds (budget.seed onwards; overrides the study's, whose default is 1); the tables give mean ± SD and mark rows within noise of the best",
    },
  },
  async run(values) {
    const configPath = values.config as string | undefined;
    const preset = values.preset as string | undefined;
    if ((configPath === undefined) === (preset === undefined)) {
      throw new UsageError(
        "Expected exactly one of --config <study.yaml> and --preset <name>",
      );
    }
    const base: Study = configPath !== undefined
      ? await readStudyFile(configPath)
      : structuredClone(STUDY_PRESETS[preset!]) as Study;
    const maxSteps = values["max-steps"] as number | undefined;
    if (maxSteps !== undefined && maxSteps < 1) {
      throw new UsageError(
        `Flag --max-steps expects an integer ≥ 1: received ${maxSteps}`,
      );
    }
    const seeds = values.seeds as number | undefined;
    if (seeds !== undefined && seeds < 1) {
      throw new UsageError(
        `Flag --seeds expects an integer ≥ 1: received ${seeds}`,
      );
    }
    const study: Study = {
      ...base,
      seeds: seeds ?? base.seeds ?? 1,
      out: (values.out as string | undefined) ?? base.out,
      budget: maxSteps === undefined
        ? base.budget
        : { ...base.budget, maxSteps },
    };
    const backend = await useBackend(values.backend as "auto");
    console.error(
      `ablate: backend ${backend.name} — ${backend.device} (${backend.reason})`,
    );
    console.error(
      `ablate: ${study.configurations.length} configurations × ${study.downstream.length} data sets${
        study.seeds! > 1 ? ` × ${study.seeds} seeds` : ""
      }; output ${study.out}`,
    );
    const controller = new AbortController();
    const stop = () => {
      if (!controller.signal.aborted) {
        console.error(
          "\nablate: stopping after this step; run the same command to continue…",
        );
        controller.abort();
      }
    };
    const signals: Deno.Signal[] = Deno.build.os === "windows"
      ? ["SIGINT"]
      : ["SIGINT", "SIGTERM"];
    for (const s of signals) Deno.addSignalListener(s, stop);
    try {
      const result = await runStudy(study, {
        signal: controller.signal,
        backend: backend.name,
        probeBackend: await probeBackendFor("ablate", backend.name),
        onEvent: (e) => {
          const prefix = e.kind === "warning"
            ? "ablate: warning: "
            : "ablate: ";
          console.error(prefix + e.message);
        },
      });
      if (study.pretrain.tensorboard !== false) {
        for (const cell of result.cells) {
          await writeProbeEvents(
            `${
              runDirOf(study, cell.configuration, cell.seed)
            }/probe-${cell.dataset}`,
            cell.report,
            result.runs.find((r) =>
              r.configuration === cell.configuration &&
              r.budget.seed === cell.seed
            )?.steps ?? 0,
          );
        }
      }
      if (result.status === "interrupted") {
        console.error(
          `ablate: interrupted after ${result.runs.length} finished runs and ${result.cells.length} probes; run the same command to continue`,
        );
        return 0;
      }
      for (const p of STUDY_PROTOCOLS) {
        const table = studyTable(result, p.key);
        if (table.rows.every((r) => r.values.every((v) => v === null))) {
          continue;
        }
        console.log(`\n${p.label} — top-1 (%)\n`);
        console.log(formatStudyTable(table));
      }
      console.error(
        `\nablate: done in ${
          result.wallSeconds.toFixed(0)
        } s; report ${study.out}/study.md`,
      );
      return 0;
    } finally {
      for (const s of signals) Deno.removeSignalListener(s, stop);
    }
  },
};
