// What `pretrain()` watches while it trains, beside the loss: the online
// linear probe on every step and the online kNN every few epochs, with their
// place in the run (the pretraining images, the step, the metrics line, the
// checkpoint). Neither touches the backbone, its gradients or the run's
// random streams.
import * as tf from "@tensorflow/tfjs-core";
import type { ImageSource } from "@scaling-vicreg/data";
import type { SafeTensor } from "@scaling-vicreg/backend/safetensors";
import type { Communicator } from "@scaling-vicreg/distributed/communicator";
import { ConfigError, type PretrainConfig } from "./config.ts";
import type { VicregModel } from "./vicreg_model.ts";
import type { StepMetrics } from "./run_metrics.ts";
import { captureFirstView, OnlineProbe } from "./online_probe.ts";
import {
  type OnlineKnnSplit,
  onlineKnnSplit,
  onlineKnnTop1,
  sourceLabels,
} from "./online_knn.ts";

/** The checkpoint prefix of the probe's weights (`<prefix>.weight`, …). */
const PREFIX = "online_probe";

/** The probe's batches since the last metrics line. */
interface Window {
  correct: number;
  count: number;
  /** Σ over the steps of the batch's mean loss × its rows. */
  loss: number;
}

/** The online probe's and kNN's metrics fields. */
export type OnlineMetrics = Pick<
  StepMetrics,
  "onlineTop1" | "onlineLoss" | "knnTop1"
>;

/** The run's online probe and kNN (either may be off). */
export class OnlineMonitors {
  /** The images pretraining trains on (the source less the kNN's split). */
  readonly pretrainSource: ImageSource;
  #config: PretrainConfig;
  #comm: Communicator;
  #probe?: OnlineProbe;
  #knn?: OnlineKnnSplit;
  #window: Window = { correct: 0, count: 0, loss: 0 };
  #numClasses?: number;

  /**
   * Sets up what the configuration asks for on `source`: the probe when
   * `online-probe` is on and every image has a label (else an info event
   * says it is off), the kNN's held-back split when `online-knn-every` > 0
   * (a ConfigError without labels). Nothing is allocated until
   * {@linkcode OnlineMonitors.start}.
   */
  constructor(
    config: PretrainConfig,
    source: ImageSource,
    options: {
      comm: Communicator;
      onEvent: (e: { level: "info"; message: string }) => void;
    },
  ) {
    this.#config = config;
    this.#comm = options.comm;
    const classes = sourceLabels(source);
    if (config.onlineKnnEvery > 0) {
      if (classes === undefined) {
        throw new ConfigError(
          "online-knn-every",
          `Key "online-knn-every" (${config.onlineKnnEvery}) needs labelled images: ${source.describe()} has images without a label (0 turns it off)`,
        );
      }
      this.#knn = onlineKnnSplit(source, {
        fraction: config.onlineKnnHoldout,
        seed: config.seed,
      });
      options.onEvent({
        level: "info",
        message:
          `Online kNN every ${config.onlineKnnEvery} epochs: ${this.#knn.heldOut.length} images held back from pretraining (${config.onlineKnnHoldout} of each class) as its queries, the ${this.#knn.pretrain.length} others its bank`,
      });
    }
    this.pretrainSource = this.#knn?.pretrain ?? source;
    if (!config.onlineProbe) return;
    if (classes === undefined || classes.numClasses < 2) {
      options.onEvent({
        level: "info",
        message: `Online probe off: ${source.describe()} has ${
          classes === undefined ? "images without a label" : "one class"
        }`,
      });
      return;
    }
    this.#numClasses = classes.numClasses;
  }

  /** Makes the probe (when it is on) for a backbone of `embeddingDim` features. */
  start(embeddingDim: number): void {
    if (this.#numClasses === undefined || this.#probe !== undefined) return;
    this.#probe = new OnlineProbe(embeddingDim, this.#numClasses);
  }

  /**
   * Runs a step; with the probe on, captures view 1's embeddings as the
   * step computes them and trains the probe on them and `labels` (this
   * process's rows of the batch) at the probe's rate for a backbone rate of
   * `lr` (`online-probe-lr` / `base-lr` × `lr`: the run's schedule);
   * `views` is the number of views per image the step embeds.
   */
  async during<T>(
    model: VicregModel,
    labels: Int32Array | undefined,
    lr: number,
    step: () => Promise<T>,
    views = 2,
  ): Promise<T> {
    const probe = this.#probe;
    if (probe === undefined) return await step();
    const { result, features } = await captureFirstView(model, step, views);
    try {
      const out = await probe.step(
        features,
        labels!,
        lr * this.#config.onlineProbeLr / this.#config.baseLr,
        { comm: this.#comm, total: this.#config.batchSize },
      );
      this.#window.correct += out.correct;
      this.#window.count += out.count;
      this.#window.loss += out.loss * out.count;
    } finally {
      features.dispose();
    }
    return result;
  }

  /**
   * The metrics fields after a step: the probe's top-1 and loss over the
   * batches since the last logged step (the window restarts when this one
   * is `logged`), and on the lead rank, at the end of every
   * `online-knn-every`-th epoch, the kNN's top-1 with the weights the step
   * left.
   */
  async report(
    model: VicregModel,
    at: { epoch: number; endOfEpoch: boolean; logged: boolean; lead: boolean },
  ): Promise<OnlineMetrics> {
    const out: OnlineMetrics = {};
    const w = this.#window;
    if (this.#probe !== undefined && w.count > 0) {
      out.onlineTop1 = w.correct / w.count;
      out.onlineLoss = w.loss / w.count;
      if (at.logged) this.#window = { correct: 0, count: 0, loss: 0 };
    }
    const every = this.#config.onlineKnnEvery;
    if (
      this.#knn && at.lead && at.endOfEpoch && (at.epoch + 1) % every === 0
    ) {
      out.knnTop1 = await onlineKnnTop1(model.backbone, this.#knn, {
        size: this.#config.size,
      });
    }
    return out;
  }

  /** The probe's weights and momentum, under `online_probe.`, for a checkpoint (owned here). */
  checkpointTensors(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    if (this.#probe === undefined) return out;
    for (const [k, v] of this.#probe.parameters()) out.set(`${PREFIX}.${k}`, v);
    for (const [k, t] of this.#probe.optimizerState().tensors) {
      out.set(`${PREFIX}.optimizer.${k}`, t);
    }
    return out;
  }

  /** What a checkpoint's state records of the probe: its step count and window. */
  checkpointState(): Record<string, unknown> | undefined {
    if (this.#probe === undefined) return undefined;
    return {
      optimizerStep: this.#probe.optimizerState().step,
      window: { ...this.#window },
    };
  }

  /**
   * Restores the probe from a checkpoint; one without it (written with the
   * probe off) leaves the probe at zero, with an info event.
   */
  restore(
    saved: Record<string, SafeTensor>,
    state: unknown,
    onEvent: (e: { level: "info"; message: string }) => void,
  ): void {
    const probe = this.#probe;
    if (probe === undefined) return;
    const recorded = state as
      | { optimizerStep: number; window: Window }
      | undefined;
    if (recorded === undefined || saved[`${PREFIX}.weight`] === undefined) {
      onEvent({
        level: "info",
        message:
          "Online probe: the checkpoint has none (written with it off); it starts from zero",
      });
      return;
    }
    const params = new Map<string, tf.Tensor>();
    const slots = new Map<string, tf.Tensor>();
    for (const [k, t] of Object.entries(saved)) {
      if (!k.startsWith(`${PREFIX}.`)) continue;
      const name = k.slice(PREFIX.length + 1);
      const tensor = tf.tensor(t.data as Float32Array, t.shape, "float32");
      if (name.startsWith("optimizer.")) slots.set(name.slice(10), tensor);
      else params.set(name, tensor);
    }
    try {
      probe.load(params, { step: recorded.optimizerStep, tensors: slots });
    } finally {
      tf.dispose([...params.values(), ...slots.values()]);
    }
    this.#window = { ...recorded.window };
  }

  /** Frees the probe. */
  dispose(): void {
    this.#probe?.dispose();
  }
}
