/**
 * An exclusive lock on a run directory, so that two runs never write into the
 * same one (their metrics would interleave and their checkpoints mix).
 *
 * The lock is a file, `run.lock`, created atomically (`createNew`: it exists
 * or it does not) and holding the owner's pid, host, start time and the
 * kernel's start tick of that pid. A lock whose owner is gone — a process of
 * this host that no longer exists, or whose pid now belongs to another
 * process — is stale: it is reported and taken over. A lock of a live
 * process, or of another host, is not.
 *
 * @module
 */
import { exists, processExists } from "@scaling-vicreg/backend/fs";

/** Who holds a run directory's lock, as written in `run.lock`. */
export interface RunLockHolder {
  /** Process id. */
  pid: number;
  /** Host name (`Deno.hostname()`). */
  host: string;
  /** When the lock was taken (ISO 8601). */
  started: string;
  /**
   * Start tick of the process (`/proc/<pid>/stat` field 22) where the
   * platform has it, telling a recycled pid from the owner.
   */
  startTick?: number;
}

/** The run directory is locked by a live run. */
export class RunLockedError extends Error {
  /** The lock's holder. */
  readonly holder: RunLockHolder | undefined;
  /**
   * Makes the error.
   *
   * @param message One line naming the holder.
   * @param holder The holder, when the lock file could be read.
   */
  constructor(message: string, holder?: RunLockHolder) {
    super(message);
    this.name = "RunLockedError";
    this.holder = holder;
  }
}

/** Options of {@linkcode acquireRunLock}. */
export interface RunLockOptions {
  /** Told, in one line, of a stale lock that was taken over. */
  onStale?: (message: string) => void;
  /**
   * Whether a process of this host still owns a lock; by default
   * {@linkcode lockOwnerAlive}.
   */
  isAlive?: (holder: RunLockHolder) => Promise<boolean>;
  /**
   * Age in milliseconds after which a lock file that cannot be parsed (its
   * writer killed between creating and filling it) counts as stale.
   * @default {10000}
   */
  unreadableStaleMs?: number;
}

/** Default values of {@linkcode RunLockOptions}. */
export const DEFAULT_RUN_LOCK_OPTIONS: Required<
  Pick<RunLockOptions, "unreadableStaleMs">
> = { unreadableStaleMs: 10_000 };

/** A held lock; {@linkcode RunLock.release} it in a `finally`. */
export interface RunLock {
  /** The lock file. */
  path: string;
  /** What the lock file says. */
  holder: RunLockHolder;
  /** Deletes the lock file if it is still this lock's. */
  release(): Promise<void>;
}

/** The lock file's name inside a run directory. */
export const RUN_LOCK_FILE = "run.lock";

/**
 * The start tick of a process from `/proc/<pid>/stat` (Linux), or `undefined`
 * where there is none.
 *
 * @param pid The process id.
 * @returns Field 22 of `/proc/<pid>/stat`, or `undefined`.
 */
export async function processStartTick(
  pid: number,
): Promise<number | undefined> {
  try {
    const text = await Deno.readTextFile(`/proc/${pid}/stat`);
    // The command name (field 2) may hold spaces: fields resume after ")".
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const tick = Number(fields[22 - 3]);
    return Number.isFinite(tick) ? tick : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the process that took a lock on this host still runs: its pid
 * exists and, where the lock recorded a start tick, with the same tick (so a
 * recycled pid does not keep a stale lock alive). Without `/proc` it asks
 * {@linkcode processExists}.
 *
 * @param holder The lock's holder.
 * @returns `false` only when the owner is known to be gone.
 */
export async function lockOwnerAlive(holder: RunLockHolder): Promise<boolean> {
  if (await exists("/proc/self/stat")) {
    const tick = await processStartTick(holder.pid);
    if (tick === undefined) return false;
    return holder.startTick === undefined || holder.startTick === tick;
  }
  return await processExists(holder.pid);
}

/**
 * Describes a holder in a few words: `pid 123 on host a since 2026-…`.
 *
 * @param holder The holder.
 * @returns One phrase.
 */
export function describeHolder(holder: RunLockHolder): string {
  return `pid ${holder.pid} on host ${holder.host} since ${holder.started}`;
}

function parseHolder(text: string): RunLockHolder | undefined {
  try {
    const h = JSON.parse(text);
    if (
      typeof h?.pid === "number" && typeof h.host === "string" &&
      typeof h.started === "string"
    ) {
      return h as RunLockHolder;
    }
  } catch {
    // Unparseable: the caller decides by the file's age.
  }
  return undefined;
}

/**
 * Takes the exclusive lock of run directory `dir` (which must exist), or
 * throws {@linkcode RunLockedError} naming the live holder. A stale lock (see
 * the module doc) is reported through `onStale` and taken over.
 *
 * @example
 * ```ts
 * import { acquireRunLock } from "@scaling-vicreg/train/run-lock";
 * const dir = await Deno.makeTempDir();
 * const lock = await acquireRunLock(dir);
 * try {
 *   // … write into dir …
 * } finally {
 *   await lock.release();
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @param dir The run directory.
 * @param options See {@linkcode RunLockOptions}.
 * @returns The held lock.
 */
export async function acquireRunLock(
  dir: string,
  options: RunLockOptions = {},
): Promise<RunLock> {
  const {
    onStale,
    isAlive = lockOwnerAlive,
    unreadableStaleMs = DEFAULT_RUN_LOCK_OPTIONS.unreadableStaleMs,
  } = options;
  const path = `${dir}/${RUN_LOCK_FILE}`;
  const startTick = await processStartTick(Deno.pid);
  const holder: RunLockHolder = {
    pid: Deno.pid,
    host: Deno.hostname(),
    started: new Date().toISOString(),
    ...(startTick !== undefined ? { startTick } : {}),
  };
  const text = JSON.stringify(holder) + "\n";
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const file = await Deno.open(path, { write: true, createNew: true });
      try {
        await file.write(new TextEncoder().encode(text));
      } finally {
        file.close();
      }
      // Deno.exit (a second Ctrl-C) skips `finally`, but not `unload`.
      const onUnload = () => {
        try {
          if (Deno.readTextFileSync(path) === text) Deno.removeSync(path);
        } catch {
          // Already gone.
        }
      };
      globalThis.addEventListener("unload", onUnload);
      return {
        path,
        holder,
        release: async () => {
          globalThis.removeEventListener("unload", onUnload);
          const now = await Deno.readTextFile(path).catch(() => undefined);
          if (now === text) await Deno.remove(path).catch(() => {});
        },
      };
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    let seen: string;
    let mtime: Date | null;
    try {
      seen = await Deno.readTextFile(path);
      mtime = (await Deno.stat(path)).mtime;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue; // just released
      throw error;
    }
    const other = parseHolder(seen);
    let why: string;
    if (other === undefined) {
      const age = Date.now() - (mtime?.getTime() ?? Date.now());
      if (age < unreadableStaleMs) {
        throw new RunLockedError(
          `${dir} is locked by another run that is starting (${path} is being written); wait for it or choose another --exp-dir`,
        );
      }
      why = `an unreadable lock file ${Math.round(age / 1000)} s old`;
    } else if (other.host !== holder.host || await isAlive(other)) {
      throw new RunLockedError(
        `${dir} is in use by another run (${
          describeHolder(other)
        }; lock ${path}): wait for it to end, or choose another --exp-dir`,
        other,
      );
    } else {
      why = `the lock of ${describeHolder(other)}, which no longer runs`;
    }
    // Take over by renaming the stale file to a name of our own, then check
    // that it is the file judged stale (another starter may have replaced it
    // in between); if not, put it back without overwriting.
    const aside = `${path}.stale-${Deno.pid}-${
      crypto.randomUUID().slice(0, 8)
    }`;
    try {
      await Deno.rename(path, aside);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      throw error;
    }
    const moved = await Deno.readTextFile(aside).catch(() => "");
    if (moved !== seen) {
      await Deno.link(aside, path).catch(() => {});
      await Deno.remove(aside).catch(() => {});
      continue;
    }
    await Deno.remove(aside).catch(() => {});
    onStale?.(`Took over a stale lock in ${dir}: ${why}`);
  }
  throw new RunLockedError(
    `${dir}: could not take ${path} (other runs keep taking it); choose another --exp-dir`,
  );
}
