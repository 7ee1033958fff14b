/**
 * How a distributed run starts: detecting the MPI launcher from the
 * environment of a rank, picking the communicator (`createCommunicator`),
 * and the `mpiexec` command that starts R local ranks of a Deno script.
 *
 * @module
 */
import { type Communicator, SingleCommunicator } from "./communicator.ts";
import {
  DEFAULT_MPI_OPTIONS,
  findMpiLibrary,
  mpiCommunicator,
  type MpiOptions,
} from "./mpi.ts";
import { grantedEnv } from "./_mpi_ffi.ts";
import { HydraReport, type RankFailure, RankPids } from "./rank_failure.ts";

/** What {@linkcode detectMpiLaunch} found. */
export interface MpiLaunch {
  /**
   * Who set the variables: `hydra` (MPICH's `mpiexec`), `slurm` (`srun
   * --mpi=pmi2` or `--mpi=pmix`), `open-mpi` (`mpirun`, another ABI).
   */
  launcher: "hydra" | "slurm" | "open-mpi";
  /** This process's rank. */
  rank: number;
  /** The number of ranks. */
  size: number;
}

/**
 * Reads the rank and size an MPI launcher gives each process it starts:
 * `PMI_RANK`/`PMI_SIZE` (MPICH's hydra; SLURM's PMI-2, with
 * `SLURM_STEP_NUM_TASKS` when `PMI_SIZE` is absent), `PMIX_RANK` (SLURM's
 * PMIx), `OMPI_COMM_WORLD_RANK`/`OMPI_COMM_WORLD_SIZE` (Open MPI). A bare
 * SLURM allocation without a PMI is not a launch (a batch script has
 * `SLURM_PROCID` too).
 *
 * @example
 * ```ts
 * import { detectMpiLaunch } from "@scaling-vicreg/distributed/launch";
 * const env: Record<string, string> = { PMI_RANK: "1", PMI_SIZE: "4" };
 * console.log(detectMpiLaunch((name) => env[name]));
 * // { launcher: "hydra", rank: 1, size: 4 }
 * ```
 *
 * @param env Reads a variable; by default the process environment (where
 * env access is granted; never prompts).
 * @returns The launch, or `undefined` when this process was not started by
 * an MPI launcher.
 * @throws {RangeError} A variable that is not a valid rank or size, named.
 */
export function detectMpiLaunch(
  env: (name: string) => string | undefined = grantedEnv,
): MpiLaunch | undefined {
  const slurm = env("SLURM_JOB_ID") !== undefined ||
    env("SLURM_STEP_ID") !== undefined;
  const slurmSize = env("SLURM_STEP_NUM_TASKS") !== undefined
    ? "SLURM_STEP_NUM_TASKS"
    : "SLURM_NTASKS";
  if (env("OMPI_COMM_WORLD_RANK") !== undefined) {
    return launch(
      env,
      "open-mpi",
      "OMPI_COMM_WORLD_RANK",
      "OMPI_COMM_WORLD_SIZE",
    );
  }
  if (env("PMI_RANK") !== undefined) {
    const size = env("PMI_SIZE") !== undefined || !slurm
      ? "PMI_SIZE"
      : slurmSize;
    return launch(env, slurm ? "slurm" : "hydra", "PMI_RANK", size);
  }
  if (env("PMIX_RANK") !== undefined && slurm) {
    return launch(env, "slurm", "PMIX_RANK", slurmSize);
  }
  return undefined;
}

function launch(
  env: (name: string) => string | undefined,
  launcher: MpiLaunch["launcher"],
  rankVariable: string,
  sizeVariable: string,
): MpiLaunch {
  const size = integer(env, sizeVariable, 1);
  const rank = integer(env, rankVariable, 0);
  if (rank >= size) {
    throw new RangeError(
      `${rankVariable}=${rank} must be below ${sizeVariable}=${size}`,
    );
  }
  return { launcher, rank, size };
}

function integer(
  env: (name: string) => string | undefined,
  variable: string,
  min: number,
): number {
  const text = env(variable);
  const value = Number(text);
  if (text === undefined || !/^\d+$/.test(text.trim()) || value < min) {
    throw new RangeError(
      `${variable} must be an integer ≥ ${min}: received ${text ?? "nothing"}`,
    );
  }
  return value;
}

/** Options of {@linkcode createCommunicator}. */
export interface CommunicatorOptions extends MpiOptions {
  /**
   * `single` (one process), `mpi` (initialise MPI; the process must have been
   * started by a launcher), or `auto`: `mpi` when {@linkcode detectMpiLaunch}
   * finds a launch of more than one rank, else `single`.
   * @default {"auto"}
   */
  kind?: "auto" | "mpi" | "single";
}

/** The defaults of {@linkcode CommunicatorOptions}. */
export const DEFAULT_COMMUNICATOR_OPTIONS: {
  kind: "auto" | "mpi" | "single";
  library: string | undefined;
  timeoutMs: number;
} = { kind: "auto", ...DEFAULT_MPI_OPTIONS };

/**
 * Makes the communicator of this process.
 *
 * @example
 * ```ts
 * import { createCommunicator } from "@scaling-vicreg/distributed/launch";
 * const comm = createCommunicator({ kind: "single" });
 * console.log(comm.kind, comm.rank, comm.size); // single 0 1
 * await comm.close();
 * ```
 *
 * @param options The kind, and for MPI the library and the watchdog's limit.
 * @returns The communicator; `close()` it at the end of the run.
 * @throws {RangeError} An unknown `kind`.
 * @throws {CommunicatorError} MPI was asked for and cannot start.
 */
export function createCommunicator(
  options: CommunicatorOptions = {},
): Communicator {
  const kind = options.kind ?? DEFAULT_COMMUNICATOR_OPTIONS.kind;
  if (kind !== "auto" && kind !== "mpi" && kind !== "single") {
    throw new RangeError(
      `distributed must be "auto", "mpi" or "single": received "${kind}"`,
    );
  }
  const useMpi = kind === "mpi" ||
    (kind === "auto" && (detectMpiLaunch()?.size ?? 1) > 1);
  if (!useMpi) return new SingleCommunicator();
  return mpiCommunicator({
    library: options.library,
    timeoutMs: options.timeoutMs,
  });
}

/**
 * The launchers looked for on `PATH`, in order: MPICH's own names first, so
 * a machine with Open MPI's `mpiexec` as the default still finds hydra.
 */
export const MPIEXEC_NAMES: readonly string[] = [
  "mpiexec.hydra",
  "mpiexec.mpich",
  "mpiexec",
  "mpirun",
];

/**
 * Finds the MPI launcher: `VICREG_MPIEXEC` when set, else the first of
 * {@linkcode MPIEXEC_NAMES} on `PATH` (needs env and read access; never
 * prompts).
 *
 * @example
 * ```ts
 * import { findMpiexec } from "@scaling-vicreg/distributed/launch";
 * console.log(findMpiexec() ?? "no MPI launcher here"); // "/usr/bin/mpiexec.hydra"
 * ```
 *
 * @returns Its path, or `undefined` when there is none.
 */
export function findMpiexec(): string | undefined {
  const chosen = grantedEnv("VICREG_MPIEXEC");
  if (chosen !== undefined) return chosen;
  const separator = Deno.build.os === "windows" ? ";" : ":";
  for (const name of MPIEXEC_NAMES) {
    for (const dir of (grantedEnv("PATH") ?? "").split(separator)) {
      if (dir === "") continue;
      const path = `${dir}/${name}`;
      const read = { name: "read", path } as const;
      if (Deno.permissions.querySync(read).state !== "granted") continue;
      try {
        if (Deno.statSync(path).isFile) return path;
      } catch {
        // not in this directory
      }
    }
  }
  return undefined;
}

/**
 * Why an MPI job cannot be started here (no MPICH library, or no launcher on
 * `PATH`), or `undefined` when it can; what the MPI tests pass to
 * `ignoreUnless(…, "mpi", why)`.
 *
 * @example
 * ```ts
 * import { mpiMissing } from "@scaling-vicreg/distributed/launch";
 * console.log(mpiMissing() ?? "MPI jobs can run here");
 * ```
 *
 * @returns The reason, or `undefined`.
 */
export function mpiMissing(): string | undefined {
  try {
    findMpiLibrary();
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  return findMpiexec() === undefined ? "no mpiexec on PATH" : undefined;
}

/** Options of {@linkcode mpiexecCommand}. */
export interface MpiexecOptions {
  /**
   * The launcher.
   * @default {undefined} {@linkcode findMpiexec}
   */
  mpiexec?: string;
  /**
   * The Deno binary each rank runs. It must be the binary itself, not a
   * wrapper such as `npx deno`, which does not pass the launcher's PMI
   * connection on (`MPI_Init` then fails with "PMI_Get_appnum returned -1").
   * @default {undefined} `Deno.execPath()`
   */
  deno?: string;
  /**
   * The Deno arguments before the script.
   * @default {["run", "-A"]}
   */
  denoArgs?: string[];
  /**
   * Launcher arguments after `-n R` (a hostfile: `["-f", "hosts"]`).
   * @default {[]}
   */
  launcherArgs?: string[];
}

/** The defaults of {@linkcode MpiexecOptions}. */
export const DEFAULT_MPIEXEC_OPTIONS: {
  mpiexec: string | undefined;
  deno: string | undefined;
  denoArgs: string[];
  launcherArgs: string[];
} = {
  mpiexec: undefined,
  deno: undefined,
  denoArgs: ["run", "-A"],
  launcherArgs: [],
};

/**
 * The command that starts `ranks` processes of a Deno script under MPI:
 * `mpiexec -n R [launcherArgs…] <deno> run -A <script> [args…]`, for
 * `--ranks R` (run it with `Deno.Command`, stdio inherited).
 *
 * @example
 * ```ts
 * import { mpiexecCommand } from "@scaling-vicreg/distributed/launch";
 * const { command, args } = mpiexecCommand(2, ["cli/main.ts", "pretrain"], {
 *   mpiexec: "/usr/bin/mpiexec.hydra",
 *   deno: "/usr/bin/deno",
 * });
 * console.log(command, args.join(" "));
 * // /usr/bin/mpiexec.hydra -n 2 /usr/bin/deno run -A cli/main.ts pretrain
 * ```
 *
 * @param ranks The number of processes, an integer ≥ 1.
 * @param argv The script, then its arguments.
 * @param options The launcher, the Deno binary and the arguments around it.
 * @returns The program and its arguments.
 * @throws {RangeError} `ranks` is not an integer ≥ 1, or `argv` is empty.
 * @throws {Error} No launcher was given or found.
 */
export function mpiexecCommand(
  ranks: number,
  argv: string[],
  options: MpiexecOptions = {},
): { command: string; args: string[] } {
  if (!Number.isInteger(ranks) || ranks < 1) {
    throw new RangeError(`--ranks must be an integer ≥ 1: received ${ranks}`);
  }
  if (argv.length === 0) {
    throw new RangeError("mpiexecCommand: argv must start with the script");
  }
  const o = { ...DEFAULT_MPIEXEC_OPTIONS, ...options };
  const mpiexec = o.mpiexec ?? findMpiexec();
  if (mpiexec === undefined) {
    throw new Error(
      `--ranks ${ranks}: no MPI launcher found (looked for ${
        MPIEXEC_NAMES.join(", ")
      } on PATH): install MPICH (apt-get install mpich) or set VICREG_MPIEXEC`,
    );
  }
  const deno = o.deno ?? Deno.execPath();
  return {
    command: mpiexec,
    args: [
      "-n",
      String(ranks),
      ...o.launcherArgs,
      deno,
      ...o.denoArgs,
      ...argv,
    ],
  };
}

/** Options of {@linkcode runRanks}. */
export interface RunRanksOptions extends MpiexecOptions {
  /**
   * Told of the rank that died when the launcher (MPICH's hydra) reports one
   * killed by a signal; the launcher's banner is then kept off stdout, so
   * the caller can say it in one line (`describeRankFailure`).
   * Without it the banner is passed on as it is.
   */
  onRankFailure?: (failure: RankFailure) => void;
}

/**
 * The signals {@linkcode runRanks} passes on (to the launcher, or to every
 * rank itself): Ctrl-C, `kill`'s default, and the warning a scheduler sends
 * before a time limit (`srun --signal=USR1@120`, `sbatch --signal=B:USR1@120`).
 */
export const FORWARDED_SIGNALS: readonly Deno.Signal[] = [
  "SIGINT",
  "SIGTERM",
  "SIGUSR1",
];

/**
 * Starts `ranks` local processes of a Deno script under MPI and waits for
 * them: what `--ranks R` does. Output goes to this process's stdout and
 * stderr. The launcher runs in its own session, so one Ctrl-C reaches it
 * once: this process forwards SIGINT to it, and MPICH's `mpiexec` passes it
 * on to every rank (a run can stop at a step boundary; a second SIGINT makes
 * it abort the job). SIGTERM and SIGUSR1 go to every rank directly once
 * their processes are known (read from `/proc`), else to the launcher: a
 * signalled hydra can report 0 for ranks that all exited 75.
 * When a rank dies, hydra kills the others at once (within a second here)
 * and reports the process id; with `onRankFailure` this says which rank.
 *
 * @example
 * ```ts ignore
 * // Not run by `deno test --doc`: it needs an MPI launcher and starts two
 * // pretraining processes.
 * import { runRanks } from "@scaling-vicreg/distributed/launch";
 * Deno.exit(await runRanks(2, ["cli/main.ts", "pretrain", "--preset", "tiny"]));
 * ```
 *
 * @param ranks The number of processes, an integer ≥ 1.
 * @param argv The script, then its arguments.
 * @param options The launcher, the Deno binary and the arguments around it,
 *   and who is told of a rank that died.
 * @returns The launcher's exit code (non-zero when any rank failed).
 * @throws {RangeError} As {@linkcode mpiexecCommand}.
 * @throws {Error} No launcher was given or found.
 */
export async function runRanks(
  ranks: number,
  argv: string[],
  options: RunRanksOptions = {},
): Promise<number> {
  const { onRankFailure, ...command } = options;
  const { command: program, args } = mpiexecCommand(ranks, argv, command);
  const child = new Deno.Command(program, {
    args,
    // In its own session the launcher must not read the terminal (SIGTTIN).
    stdin: "null",
    stdout: onRankFailure ? "piped" : "inherit",
    stderr: "inherit",
    detached: true,
  }).spawn();
  const signals = Deno.build.os === "windows" ? [] : FORWARDED_SIGNALS;
  const pids = new RankPids(child.pid, ranks);
  const forwarders = signals.map((signal) => {
    const forward = () => {
      // A preemption goes straight to every rank once all are known: hydra,
      // signalled itself, can lose its ranks' exit codes and report 0 for a
      // job whose ranks all exited 75 (seen under load with MPICH 4.0).
      if (signal !== "SIGINT" && signalEveryRank(pids, ranks, signal)) return;
      try {
        child.kill(signal);
      } catch {
        // it has exited already
      }
    };
    Deno.addSignalListener(signal, forward);
    return [signal, forward] as const;
  });
  try {
    if (onRankFailure) {
      const report = new HydraReport();
      await passOn(child.stdout, report);
      const failure = report.failure;
      if (failure !== undefined) {
        const rank = failure.rank ?? pids.rankOf(failure.pid);
        onRankFailure(rank !== undefined ? { ...failure, rank } : failure);
      }
    }
    return (await child.status).code;
  } finally {
    pids.stop();
    for (const [signal, forward] of forwarders) {
      Deno.removeSignalListener(signal, forward);
    }
  }
}

/**
 * Sends `signal` to each of the `size` ranks `pids` has seen, when it has
 * seen them all (a rank that has exited already is skipped).
 *
 * @returns Whether every rank was known (else nothing was sent).
 */
function signalEveryRank(
  pids: RankPids,
  size: number,
  signal: Deno.Signal,
): boolean {
  const all = Array.from({ length: size }, (_, r) => pids.pidOf(r));
  if (all.some((pid) => pid === undefined)) return false;
  for (const pid of all) {
    try {
      Deno.kill(pid!, signal);
    } catch {
      // that rank has exited already
    }
  }
  return true;
}

/**
 * Copies `stream` to this process's stdout line by line, through `report`
 * (which keeps back the launcher's own report of a failed rank).
 */
async function passOn(
  stream: ReadableStream<Uint8Array>,
  report: HydraReport,
): Promise<void> {
  const encoder = new TextEncoder();
  const write = async (lines: string[], last = "\n") => {
    if (lines.length === 0) return;
    const bytes = encoder.encode(lines.join("\n") + last);
    for (let done = 0; done < bytes.length;) {
      done += await Deno.stdout.write(bytes.subarray(done));
    }
  };
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop()!;
    await write(lines.flatMap((line) => report.take(line)));
  }
  const tail = pending === "" ? [] : report.take(pending);
  await write([...report.end(), ...tail.slice(0, -1)]);
  await write(tail.slice(-1), "");
}
