/**
 * The records a study writes: a finished run (`done.json`), a probed
 * (configuration, seed, data set) cell (`results/<run>/<set>.json`, `<run>`
 * as `runNameOf` names it) and the whole result (`study.json`); shared by the
 * study's orchestration and its report.
 *
 * @module
 */
import type { ProbeReport } from "@scaling-vicreg/probe";
import type { Study, StudyDataset, StudyProbe } from "./study_schema.ts";
import type { RunBudget } from "./study_budget.ts";

/** A finished pretraining run of a study (its `done.json`); its seed is `budget.seed`. */
export interface StudyRun {
  /** The configuration's name. */
  configuration: string;
  /** What it is. */
  description: string;
  /** The row's own keys. */
  flags: Record<string, string | number | boolean>;
  /** Backbone. */
  arch: string;
  /** The budget it was given. */
  budget: RunBudget;
  /** Steps trained. */
  steps: number;
  /** Wall-clock seconds of pretraining (summed over sessions). */
  wallSeconds: number;
  /** Mean training images per second over the logged steps. */
  imagesPerSecond: number;
  /** Last logged total loss. */
  finalLoss: number | null;
  /** Backend name. */
  backend: string;
  /** Sessions it took (more than one when it was resumed). */
  sessions: number;
  /** ISO time it finished. */
  finishedAt: string;
}

/** The probe results of one (configuration, seed, data set) cell. */
export interface StudyCell {
  /** The configuration. */
  configuration: string;
  /**
   * The seed of the run and of its probes (cells saved before studies had
   * seeds lack it: they are the study's first seed).
   */
  seed: number;
  /** The data set. */
  dataset: string;
  /** The probe settings it was computed with. */
  probe: StudyProbe;
  /** The data set's definition it was computed with. */
  data: StudyDataset;
  /** The probe report (baseline, sweep with its validation-scored trials, TTA, kNN). */
  report: ProbeReport;
  /** Wall-clock seconds of feature extraction and probing. */
  seconds: number;
}

/** What {@linkcode runStudy} returns (and `study.json` holds). */
export interface StudyResult {
  /** `completed`, or `interrupted` when the signal stopped it. */
  status: "completed" | "interrupted";
  /** The study. */
  study: Study;
  /** Finished runs, seed-major, in configuration order within a seed. */
  runs: StudyRun[];
  /** Finished cells, seed-major, then configuration-major. */
  cells: StudyCell[];
  /** Backend name. */
  backend: string;
  /** Git commit of the code, or `null` when unknown. */
  commit: string | null;
  /** Wall-clock seconds of this invocation. */
  wallSeconds: number;
}
