// What a Ctrl-C does to a run: the first stops it after the current step
// with a checkpoint; a second one exits at once. Under `npx … deno task` the
// CLI gets each Ctrl-C twice within a few milliseconds (the terminal signals
// the whole process group and the wrapper forwards its copy): copies handled
// less than DUPLICATE_SIGNAL_MS apart count as one. Signals wait while a
// training step holds the event loop, so a second Ctrl-C counts once the
// first has been acknowledged.

/** What to do with one SIGINT/SIGTERM. */
export type InterruptAction = "stop" | "ignore" | "exit";

/** Signals handled closer together than this are one Ctrl-C delivered twice. */
export const DUPLICATE_SIGNAL_MS = 300;

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
  stop(): void;
  /** Prints one line to stderr. */
  print(line: string): void;
  /** Ends the process now. */
  exit(code: number): void;
  /** The clock, in ms. */
  now(): number;
}

/**
 * The signal listener of a run: first Ctrl-C stops after the step, a later
 * one exits with 130 (the run directory's lock is released on unload).
 */
export function interruptHandler(
  label: string,
  expDir: string,
  effects: InterruptEffects,
): () => void {
  const policy = new InterruptPolicy();
  return () => {
    const action = policy.next(effects.now());
    if (action === "stop") {
      effects.print(
        `\n${label}: stopping after this step and writing a checkpoint… (Ctrl-C again to stop at once, without one)`,
      );
      effects.stop();
    } else if (action === "exit") {
      effects.print(
        `\n${label}: second Ctrl-C: stopped at once without writing a checkpoint; --resume continues from the last one in ${expDir}`,
      );
      effects.exit(130);
    }
  };
}
