// A probe report's numbers as TensorBoard scalars, for `vicreg probe` and
// `vicreg ablate`: the same tags everywhere, so that runs line up.
import { EventWriter } from "@scaling-vicreg/tensorboard";
import type { ProbeReport, SweepTrial } from "@scaling-vicreg/probe";

/** The name suffix of a probe's event file. */
const SUFFIX = ".probe";

/**
 * Writes the event file of `report` in `dir`: top-1 (in [0, 1], as
 * report.json) of each protocol row at `step` (the backbone's training
 * step, so it lines up with the run's curves) as `probe/<row>/top1`
 * (baseline, sweep, sweep_tta, knn), and each sweep trial's validation top-1
 * at the trial's index as `probe/<sweep>/trial_validation_top1`. The probe
 * event file an earlier report left in `dir` is removed once the new one is
 * written (as report.json is replaced); other event files are left alone
 * (no SessionLog: it would hide a training run's curves in the same
 * directory).
 *
 * @returns The event file's path.
 */
export async function writeProbeEvents(
  dir: string,
  report: ProbeReport,
  step: number,
): Promise<string> {
  const earlier = await EventWriter.list(dir, SUFFIX);
  const writer = await EventWriter.open(dir, { suffix: SUFFIX });
  try {
    const rows: [string, number | undefined][] = [
      ["baseline", report.baseline.top1],
      ["sweep", report.sweep.top1],
      ["sweep_tta", report.sweepTta?.top1],
      ["knn", report.knn?.top1],
    ];
    for (const [row, top1] of rows) {
      if (top1 !== undefined) writer.scalar(`probe/${row}/top1`, top1, step);
    }
    const trials: [string, SweepTrial[]][] = [
      ["sweep", report.trials],
      ["sweep_tta", report.ttaSweep?.trials ?? []],
    ];
    for (const [sweep, list] of trials) {
      for (const t of list) {
        writer.scalar(
          `probe/${sweep}/trial_validation_top1`,
          t.validationTop1,
          t.index,
        );
      }
    }
  } finally {
    await writer.close();
  }
  for (const name of earlier) await Deno.remove(`${dir}/${name}`);
  return writer.path;
}
