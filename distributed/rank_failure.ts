/**
 * Which rank of a launched job died, and how: MPICH's `mpiexec` (hydra)
 * reports a rank killed by a signal in a banner on its stdout that names the
 * process id and host but not the rank ("BAD TERMINATION OF ONE OF YOUR
 * APPLICATION PROCESSES … PID 3868 RUNNING AT vm … EXIT CODE: 9"). A
 * {@linkcode HydraReport} reads the launcher's output line by line and picks
 * that banner out; {@linkcode RankPids} maps the process ids of a job's
 * ranks to their ranks (from each rank's `PMI_RANK`, read under `/proc`
 * while the job runs), so the report can say "rank 1".
 *
 * @module
 */

/** A rank that ended abnormally, as its launcher reported it. */
export interface RankFailure {
  /** The rank, when its process id was seen while the job ran. */
  rank?: number;
  /** The process id. */
  pid: number;
  /** The host it ran on. */
  host: string;
  /**
   * The exit code the launcher reported; for a process killed by a signal,
   * hydra reports the signal's number (9 for SIGKILL).
   */
  exitCode: number;
  /** The signal that killed it, when the launcher says so (`SIGKILL`). */
  signal?: string;
}

const SIGNAL_NAMES: Record<number, string> = {
  1: "SIGHUP",
  2: "SIGINT",
  3: "SIGQUIT",
  4: "SIGILL",
  6: "SIGABRT",
  7: "SIGBUS",
  8: "SIGFPE",
  9: "SIGKILL",
  10: "SIGUSR1",
  11: "SIGSEGV",
  12: "SIGUSR2",
  13: "SIGPIPE",
  14: "SIGALRM",
  15: "SIGTERM",
  24: "SIGXCPU",
  25: "SIGXFSZ",
};

/**
 * Reads a launcher's output line by line and takes out hydra's report of a
 * rank that died: the `=====` banner and the three lines that follow it
 * ("YOUR APPLICATION TERMINATED WITH THE EXIT STRING: …", "This typically
 * refers to …", "Please see the FAQ page …"). Every other line is the job's
 * own output.
 *
 * @example
 * ```ts
 * import { HydraReport } from "@scaling-vicreg/distributed/rank-failure";
 * const report = new HydraReport();
 * const banner = [
 *   "=".repeat(83),
 *   "=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES",
 *   "=   PID 3868 RUNNING AT vm",
 *   "=   EXIT CODE: 9",
 *   "=   CLEANING UP REMAINING PROCESSES",
 *   "=".repeat(83),
 *   "YOUR APPLICATION TERMINATED WITH THE EXIT STRING: Killed (signal 9)",
 * ];
 * console.log(report.take("a line of the job")); // ["a line of the job"]: pass it on
 * console.log(banner.flatMap((line) => report.take(line))); // []: kept back
 * console.log(report.failure); // { pid: 3868, host: "vm", exitCode: 9, signal: "SIGKILL" }
 * ```
 */
export class HydraReport {
  #inBanner = false;
  #lines: string[] = [];
  #failure: RankFailure | undefined;

  /** The first failure reported, once its banner has been read. */
  get failure(): RankFailure | undefined {
    return this.#failure;
  }

  /**
   * Reads one line (without its newline).
   *
   * @param line The line.
   * @returns The lines to pass on now, in order: none while a banner is
   *   being read (or for a line of the launcher's report), the line itself
   *   for the job's output, and the held-back lines of a `=====` block that
   *   turned out not to be a report.
   */
  take(line: string): string[] {
    const text = line.trimEnd();
    if (/^={20,}$/.test(text)) {
      this.#lines.push(line);
      if (!this.#inBanner) {
        this.#inBanner = true;
        return [];
      }
      return this.#close();
    }
    if (this.#inBanner) {
      if (text.startsWith("=")) {
        this.#lines.push(line);
        return [];
      }
      return [...this.#close(), ...this.take(line)];
    }
    if (this.#failure === undefined) return [line];
    const exitString =
      /^YOUR APPLICATION TERMINATED WITH THE EXIT STRING: (.*)$/
        .exec(text);
    if (exitString !== null) {
      const signal = /\(signal (\d+)\)/.exec(exitString[1]);
      if (signal !== null && this.#failure.signal === undefined) {
        this.#failure.signal = SIGNAL_NAMES[Number(signal[1])] ??
          `signal ${signal[1]}`;
      }
      return [];
    }
    const closing =
      /^This typically refers to a problem with your application\.$/
        .test(text) ||
      /^Please see the FAQ page for debugging suggestions$/.test(text);
    return closing ? [] : [line];
  }

  /** Ends a `=====` block: its lines when it is not a failure report. */
  #close(): string[] {
    this.#inBanner = false;
    const held = this.#lines;
    this.#lines = [];
    const lines = held.map((l) => l.trimEnd().replace(/^=\s*/, ""));
    if (!lines.some((l) => l.startsWith("BAD TERMINATION"))) return held;
    const where = lines.map((l) =>
      /^(?:RANK (\d+) )?PID (\d+) RUNNING AT (\S+)/.exec(l)
    ).find((m) => m !== null);
    const code = lines.map((l) => /^EXIT (?:CODE|STATUS): (\d+)/.exec(l))
      .find((m) => m !== null);
    if (!where || !code) return held;
    this.#failure ??= {
      ...(where[1] !== undefined ? { rank: Number(where[1]) } : {}),
      pid: Number(where[2]),
      host: where[3],
      exitCode: Number(code[1]),
    };
    return [];
  }

  /**
   * Ends the output: the lines of an unfinished `=====` block.
   *
   * @returns The held-back lines.
   */
  end(): string[] {
    const held = this.#inBanner ? this.#lines : [];
    this.#inBanner = false;
    this.#lines = [];
    return held;
  }
}

/**
 * One line naming a failed rank: `rank 1 (pid 3868 on vm) was killed by
 * SIGKILL`, or `… exited with code 3`.
 *
 * @example
 * ```ts
 * import { describeRankFailure } from "@scaling-vicreg/distributed/rank-failure";
 * console.log(describeRankFailure({ rank: 1, pid: 3868, host: "vm", exitCode: 9, signal: "SIGKILL" }));
 * // rank 1 (pid 3868 on vm) was killed by SIGKILL
 * ```
 *
 * @param failure The failure.
 * @returns The line, without a full stop.
 */
export function describeRankFailure(failure: RankFailure): string {
  const who = failure.rank !== undefined
    ? `rank ${failure.rank} (pid ${failure.pid} on ${failure.host})`
    : `a rank (pid ${failure.pid} on ${failure.host})`;
  return failure.signal !== undefined
    ? `${who} was killed by ${failure.signal}`
    : `${who} exited with code ${failure.exitCode}`;
}

/** Options of {@linkcode RankPids}. */
export interface RankPidsOptions {
  /**
   * How often `/proc` is read until every rank is seen, in ms.
   * @default {500}
   */
  intervalMs?: number;
  /**
   * The `/proc` to read (a test's stand-in).
   * @default {"/proc"}
   */
  proc?: string;
}

/** The defaults of {@linkcode RankPidsOptions}. */
export const DEFAULT_RANK_PIDS_OPTIONS: { intervalMs: number; proc: string } = {
  intervalMs: 500,
  proc: "/proc",
};

/**
 * The ranks of the processes a launcher started on this machine, by process
 * id: the descendants of the launcher whose environment holds `PMI_RANK`
 * (hydra and SLURM's PMI set it), read from `/proc` every `intervalMs` until
 * `size` ranks are seen or {@linkcode RankPids.stop} is called. Where there is
 * no readable `/proc` (macOS) it stays empty and a failure names the pid only.
 *
 * @example
 * ```ts
 * import { RankPids } from "@scaling-vicreg/distributed/rank-failure";
 * const pids = new RankPids(Deno.pid, 2);
 * pids.stop();
 * console.log(pids.rankOf(12345), pids.pidOf(0)); // undefined undefined: no rank here
 * ```
 */
export class RankPids {
  #ranks = new Map<number, number>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #launcher: number;
  #size: number;
  #proc: string;

  /**
   * Starts watching.
   *
   * @param launcher The launcher's process id.
   * @param size The number of ranks expected.
   * @param options See {@linkcode RankPidsOptions}.
   */
  constructor(launcher: number, size: number, options: RankPidsOptions = {}) {
    const o = { ...DEFAULT_RANK_PIDS_OPTIONS, ...options };
    this.#launcher = launcher;
    this.#size = size;
    this.#proc = o.proc;
    if (!this.#readable()) return;
    this.#timer = setInterval(() => this.#scan(), o.intervalMs);
    this.#scan();
  }

  /**
   * The rank of a process of this job.
   *
   * @param pid A process id.
   * @returns Its rank, when it was a rank of this job.
   */
  rankOf(pid: number): number | undefined {
    return this.#ranks.get(pid);
  }

  /**
   * The process of a rank of this job.
   *
   * @param rank A rank.
   * @returns The process id of that rank (the first seen), when seen.
   */
  pidOf(rank: number): number | undefined {
    for (const [pid, r] of this.#ranks) if (r === rank) return pid;
    return undefined;
  }

  /** Stops reading `/proc` (the ranks seen so far are kept). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #readable(): boolean {
    const read = { name: "read", path: this.#proc } as const;
    return Deno.build.os === "linux" &&
      Deno.permissions.querySync(read).state === "granted";
  }

  #scan(): void {
    const parents = new Map<number, number>();
    try {
      for (const entry of Deno.readDirSync(this.#proc)) {
        if (!/^\d+$/.test(entry.name)) continue;
        try {
          const stat = Deno.readTextFileSync(
            `${this.#proc}/${entry.name}/stat`,
          );
          // stat: "pid (comm) state ppid …"; comm may hold spaces.
          const ppid = Number(
            stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1],
          );
          parents.set(Number(entry.name), ppid);
        } catch {
          // it exited while we read
        }
      }
    } catch {
      this.stop();
      return;
    }
    const inJob = (pid: number): boolean => {
      for (
        let p = parents.get(pid), depth = 0;
        p !== undefined && depth < 16;
        depth++
      ) {
        if (p === this.#launcher) return true;
        p = parents.get(p);
      }
      return false;
    };
    for (const pid of parents.keys()) {
      if (this.#ranks.has(pid) || !inJob(pid)) continue;
      try {
        const env = Deno.readTextFileSync(`${this.#proc}/${pid}/environ`);
        const rank = /(?:^|\0)PMI_RANK=(\d+)(?:\0|$)/.exec(env);
        if (rank !== null) this.#ranks.set(pid, Number(rank[1]));
      } catch {
        // not ours to read, or gone
      }
    }
    if (this.#ranks.size >= this.#size) this.stop();
  }
}
