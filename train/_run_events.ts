// A run's TensorBoard event file: what pretrain() writes besides
// metrics.jsonl, through the same call that appends a metrics line.
import { EventWriter } from "@scaling-vicreg/tensorboard";
import { configToYaml, type PretrainConfig } from "./config.ts";
import type { StepMetrics } from "./run_metrics.ts";

/** Fields of a metrics line that say where a step is, not how it went. */
const POSITION_KEYS: ReadonlySet<string> = new Set([
  "step",
  "batch",
  "totalSteps",
]);

/** Tag of a metrics key: `train/` and its snake_case (`imagesPerSecond` → `train/images_per_second`). */
export function scalarTag(key: string): string {
  return `train/${key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
}

/** What a run's events start with. */
export interface RunEventsStart {
  /**
   * The first step this process trains (0 for a fresh run, the checkpoint's
   * step + 1 for a resumed one): TensorBoard drops what earlier files hold
   * from there on, as metrics.jsonl was cut back to the checkpoint.
   */
  step: number;
  /** A PNG of the augmentation, logged at step 0 of a fresh run. */
  preview?: () => Promise<Uint8Array>;
}

/** The TensorBoard events of one process's part of a run. */
export class RunEvents {
  #writer: EventWriter;

  private constructor(writer: EventWriter) {
    this.#writer = writer;
  }

  /**
   * A new event file in `config.expDir`, starting with a SessionLog.START at
   * `start.step`, the configuration (YAML, as config.yaml) as text at that
   * step, and, for a fresh run, the preview image at step 0.
   */
  static async open(
    config: PretrainConfig,
    start: RunEventsStart,
  ): Promise<RunEvents> {
    const writer = await EventWriter.open(config.expDir);
    try {
      writer.sessionStart(start.step);
      writer.text(
        "config",
        "```yaml\n" + configToYaml(config) + "```",
        start.step,
      );
      if (start.step === 0 && start.preview !== undefined) {
        writer.image("augmentation/preview", await start.preview(), 0);
      }
      await writer.flush();
    } catch (error) {
      await writer.close();
      throw error;
    }
    return new RunEvents(writer);
  }

  /** Every number of a metrics line as a scalar at its step, in one write. */
  async step(metrics: StepMetrics): Promise<void> {
    for (const [key, value] of Object.entries(metrics)) {
      if (typeof value !== "number" || POSITION_KEYS.has(key)) continue;
      this.#writer.scalar(scalarTag(key), value, metrics.step);
    }
    await this.#writer.flush();
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    await this.#writer.close();
  }
}
