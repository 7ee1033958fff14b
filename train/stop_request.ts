/**
 * Asking a run to stop at the next step boundary, and every rank agreeing on
 * it: a person's Ctrl-C (`interrupt`), or a scheduler's warning that the job
 * is about to be preempted or hit its time limit (`preempt`: SLURM's SIGTERM,
 * or the SIGUSR1 of `srun --signal=USR1@120`), after which the job should be
 * requeued and resumed. Either way the run finishes its step, writes one
 * checkpoint and returns; the kind says which, so the caller can exit with a
 * status a requeue script tests.
 *
 * @module
 */
import type { Communicator } from "@scaling-vicreg/distributed/communicator";

/** Why a run is asked to stop: a person (`interrupt`) or a scheduler (`preempt`). */
export type StopKind = "interrupt" | "preempt";

/**
 * The reason to give `AbortController.abort()` so that `pretrain` knows why
 * it stops; a plain `abort()` counts as an `interrupt`.
 *
 * @example
 * ```ts
 * import { StopRequest, stopKindOf } from "@scaling-vicreg/train/stop-request";
 * const controller = new AbortController();
 * controller.abort(new StopRequest("preempt", "SIGUSR1"));
 * console.log(stopKindOf(controller.signal)); // "preempt"
 * ```
 */
export class StopRequest extends Error {
  /** Why. */
  readonly kind: StopKind;
  /** The signal that asked, when one did (`SIGUSR1`). */
  readonly signal?: string;

  /**
   * Makes a stop request.
   *
   * @param kind Why the run stops.
   * @param signal The signal that asked, for messages.
   */
  constructor(kind: StopKind, signal?: string) {
    super(
      `${kind === "preempt" ? "preempted" : "interrupted"}${
        signal ? ` (${signal})` : ""
      }`,
    );
    this.name = "StopRequest";
    this.kind = kind;
    if (signal !== undefined) this.signal = signal;
  }
}

/**
 * What an abort signal asks of a run.
 *
 * @example
 * ```ts
 * import { stopKindOf } from "@scaling-vicreg/train/stop-request";
 * const controller = new AbortController();
 * console.log(stopKindOf(controller.signal)); // undefined: keep going
 * controller.abort();
 * console.log(stopKindOf(controller.signal)); // "interrupt"
 * ```
 *
 * @param signal The run's signal, if any.
 * @returns `undefined` while it has not fired; else the
 *   {@linkcode StopRequest}'s kind, or `interrupt` for any other reason.
 */
export function stopKindOf(
  signal: AbortSignal | undefined,
): StopKind | undefined {
  if (signal === undefined || !signal.aborted) return undefined;
  return signal.reason instanceof StopRequest
    ? signal.reason.kind
    : "interrupt";
}

/**
 * The stop every rank agrees on after a step: the votes of all ranks summed
 * (one all-reduce of two floats), so a signal that reached one rank stops
 * them all at the same step; `preempt` wins over `interrupt`, so that every
 * rank exits with the status that gets the job requeued. One process decides
 * alone.
 *
 * @example
 * ```ts
 * import { SingleCommunicator } from "@scaling-vicreg/distributed/communicator";
 * import { agreeOnStop } from "@scaling-vicreg/train/stop-request";
 * console.log(await agreeOnStop(new SingleCommunicator(), "preempt")); // "preempt"
 * ```
 *
 * @param comm The ranks.
 * @param mine This rank's vote (`undefined`: keep going).
 * @returns The agreed stop, or `undefined` to keep going.
 */
export async function agreeOnStop(
  comm: Communicator,
  mine: StopKind | undefined,
): Promise<StopKind | undefined> {
  if (comm.size === 1) return mine;
  // votes: [interrupt, preempt], each the number of ranks asking.
  const votes = await comm.allReduce(
    Float32Array.of(mine === "interrupt" ? 1 : 0, mine === "preempt" ? 1 : 0),
  );
  return votes[1] > 0 ? "preempt" : votes[0] > 0 ? "interrupt" : undefined;
}
