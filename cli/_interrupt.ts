// What a signal does to a run. A person's Ctrl-C (SIGINT) stops it after the
// current step with a checkpoint and exits 0; a second one exits at once
// (130). A scheduler's warning (SIGTERM, or the SIGUSR1 of
// `srun --signal=USR1@120`) does the same and exits with
// PREEMPTED_EXIT_CODE, which a requeue script tests; a second one exits at
// once with it too (the last checkpoint is intact). Under `npx … deno task`
// the CLI gets each Ctrl-C twice within a few milliseconds (the terminal
// signals the whole process group and the wrapper forwards its copy): copies
// handled less than DUPLICATE_SIGNAL_MS apart count as one. Signals wait
// while a training step holds the event loop, so a second signal counts once
// the first has been acknowledged.
import { type StopKind, StopRequest } from "@scaling-vicreg/train";

/** What to do with one signal. */
export type InterruptAction = "stop" | "ignore" | "exit";

/** Signals handled closer together than this are one Ctrl-C delivered twice. */
export const DUPLICATE_SIGNAL_MS = 300;

/**
 * The exit status of a run stopped by a scheduler's warning (SIGTERM,
 * SIGUSR1) after writing its checkpoint: sysexits.h's EX_TEMPFAIL ("a
 * temporary failure; try again"), distinct from success (0), an error (1), a
 * second Ctrl-C (130) and a kill by a signal (128 + n). A requeue script
 * tests it and resubmits the same command with `--resume`.
 */
export const PREEMPTED_EXIT_CODE = 75;

/** The exit status of a run stopped at once by a second Ctrl-C. */
export const INTERRUPTED_EXIT_CODE = 130;

/** The signals a run listens to, and what each asks for. */
export const STOP_SIGNALS: Readonly<Record<string, StopKind>> = {
  SIGINT: "interrupt",
  SIGTERM: "preempt",
  SIGUSR1: "preempt",
};

/** The signals to listen to on this operating system. */
export function stopSignals(): Deno.Signal[] {
  return Deno.build.os === "windows"
    ? ["SIGINT"]
    : Object.keys(STOP_SIGNALS) as Deno.Signal[];
}

/** Decides each signal's action from the time it is handled (ms, any clock). */
export class InterruptPolicy {
  #first: number | undefined;

  /**
   * @param now When the signal is handled, in ms.
   * @returns `stop` for the first, `ignore` for a copy of it, else `exit`.
   */
  next(now: number): InterruptAction {
    if (this.#first === undefined) {
      this.#first = now;
      return "stop";
    }
    return now - this.#first < DUPLICATE_SIGNAL_MS ? "ignore" : "exit";
  }
}

/** The side effects of {@linkcode interruptHandler}, injectable for tests. */
export interface InterruptEffects {
  /** Asks the run to stop after its step, with a checkpoint. */
  stop(request: StopRequest): void;
  /** Prints one line to stderr. */
  print(line: string): void;
  /** Ends the process now. */
  exit(code: number): void;
  /** The clock, in ms. */
  now(): number;
}

/**
 * The signal listener of a run, called with the signal's name: the first
 * signal stops the run after the step (an `interrupt` for SIGINT, a
 * `preempt` for SIGTERM and SIGUSR1); a later one exits at once, with
 * {@linkcode PREEMPTED_EXIT_CODE} once a scheduler's signal has come, else
 * with {@linkcode INTERRUPTED_EXIT_CODE} (the run directory's lock is
 * released on unload).
 */
export function interruptHandler(
  label: string,
  expDir: string,
  effects: InterruptEffects,
): (signal: string) => void {
  const policy = new InterruptPolicy();
  let preempted = false;
  return (signal) => {
    const kind = STOP_SIGNALS[signal] ?? "interrupt";
    const action = policy.next(effects.now());
    if (action === "ignore") return;
    preempted ||= kind === "preempt";
    if (action === "stop") {
      effects.print(
        kind === "preempt"
          ? `\n${label}: ${signal}: stopping after this step and writing a checkpoint, then exiting with ${PREEMPTED_EXIT_CODE} (preempted: requeue with --resume)`
          : `\n${label}: stopping after this step and writing a checkpoint… (Ctrl-C again to stop at once, without one)`,
      );
      effects.stop(new StopRequest(kind, signal));
      return;
    }
    const what = signal === "SIGINT" ? "second Ctrl-C" : `${signal} again`;
    const code = preempted ? PREEMPTED_EXIT_CODE : INTERRUPTED_EXIT_CODE;
    effects.print(
      `\n${label}: ${what}: stopped at once without writing a checkpoint; --resume continues from the last one in ${expDir}${
        preempted ? ` (exit ${code}: preempted)` : ""
      }`,
    );
    effects.exit(code);
  };
}
