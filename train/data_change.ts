/**
 * The resume rule for the data set: a run never trains on a different order
 * without saying so. Each checkpoint records the fingerprint of the data
 * set's file list (`@scaling-vicreg/data`'s `fingerprintFiles`: the files in
 * index order with their sizes), and the list itself is kept once per
 * fingerprint in the run directory (`data-files-<digest>.json`). A resume
 * whose files differ (removed, no longer passing the up-front check, resized,
 * added, reordered) is refused with a {@linkcode DataChangedError} naming
 * them, unless `allow-data-change` is set: then the run says which files
 * changed, records it (a `{"event": "data-change"}` line in `metrics.jsonl`)
 * and continues on the files there are now, in the order the seed gives
 * them, the same on every such resume. All ranks must read the same files
 * ({@linkcode agreeOnDataFiles}). The procedural data set has no files and
 * nothing to check.
 *
 * @module
 */
import { writeFileAtomic } from "@scaling-vicreg/backend/fs";
import {
  compareFileLists,
  type FileListChange,
  type FileListFingerprint,
  type FileRecord,
} from "@scaling-vicreg/data/file-list-fingerprint";
import type { Communicator } from "@scaling-vicreg/distributed/communicator";
import { ConfigError } from "./config.ts";
import { type Checkpoint, checkpointName } from "./checkpoint.ts";
import {
  appendMetrics,
  METRICS_FILE,
  type MetricsLine,
} from "./run_metrics.ts";
import { guardWrite } from "./storage_error.ts";

/** What a checkpoint records of the data set it trained on. */
export interface RecordedDataFiles {
  /** The list's SHA-256 (see `fileListDigest`). */
  digest: string;
  /** Number of files. */
  count: number;
  /** The run-directory file that holds the list. */
  list: string;
}

/** A resume refused because the data set's files changed. */
export class DataChangedError extends ConfigError {
  /** What changed (absent when the saved list is gone). */
  readonly change?: FileListChange;

  /**
   * Makes the error (key `allow-data-change`).
   *
   * @param message One line naming the files.
   * @param change What changed.
   */
  constructor(message: string, change?: FileListChange) {
    super("allow-data-change", message);
    this.name = "DataChangedError";
    if (change !== undefined) this.change = change;
  }
}

/**
 * The run-directory file that keeps the list of a fingerprint.
 *
 * @example
 * ```ts
 * import { dataFilesName } from "@scaling-vicreg/train/data-change";
 * console.log(dataFilesName("0123456789abcdef0123")); // "data-files-0123456789abcdef.json"
 * ```
 *
 * @param digest The list's SHA-256, hex.
 * @returns The file name (16 hex digits of the digest).
 */
export function dataFilesName(digest: string): string {
  return `data-files-${digest.slice(0, 16)}.json`;
}

/** Options of {@linkcode checkDataFiles}. */
export interface CheckDataFilesOptions {
  /**
   * Continue on changed files instead of refusing (`allow-data-change`).
   * @default {false}
   */
  allow?: boolean;
  /** The checkpoint resumed from, for messages. @default {"the checkpoint"} */
  checkpoint?: string;
  /** The step resumed at, for the metrics line. @default {0} */
  step?: number;
}

/** The defaults of {@linkcode CheckDataFilesOptions}. */
export const DEFAULT_CHECK_DATA_FILES_OPTIONS: Required<CheckDataFilesOptions> =
  { allow: false, checkpoint: "the checkpoint", step: 0 };

/** What {@linkcode checkDataFiles} found. */
export interface DataFilesCheck {
  /** What the run's checkpoints record from now on. */
  record: RecordedDataFiles;
  /** With `allow`, the warning that names the changed files. */
  warning?: string;
  /** With `allow`, the `metrics.jsonl` line recording the change. */
  event?: MetricsLine;
}

/** At most `n` names, then "and K more". */
function some(names: readonly string[], n = 3): string {
  const shown = names.slice(0, n).join(", ");
  return names.length > n ? `${shown} and ${names.length - n} more` : shown;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * The change in words: `2 files gone (removed or no longer readable:
 * cat/a.png, dog/b.png), 1 resized (cat/c.png: 1234 -> 1000 bytes), 0 added`.
 *
 * @example
 * ```ts
 * import { describeDataChange } from "@scaling-vicreg/train/data-change";
 * console.log(describeDataChange({ removed: ["a.png"], resized: [], added: [], reordered: false }));
 * // 1 file gone (removed or no longer readable: a.png)
 * ```
 *
 * @param change What changed.
 * @returns One line.
 */
export function describeDataChange(change: FileListChange): string {
  const parts: string[] = [];
  if (change.removed.length > 0) {
    parts.push(
      `${
        plural(change.removed.length, "file")
      } gone (removed or no longer readable: ${some(change.removed)})`,
    );
  }
  if (change.resized.length > 0) {
    parts.push(
      `${plural(change.resized.length, "file")} resized (${
        some(change.resized.map((r) => `${r.path}: ${r.from} -> ${r.to} bytes`))
      })`,
    );
  }
  if (change.added.length > 0) {
    parts.push(
      `${plural(change.added.length, "file")} added (${some(change.added)})`,
    );
  }
  if (parts.length === 0 && change.reordered) {
    parts.push("the same files in another order");
  }
  return parts.join(", ");
}

async function readList(path: string): Promise<FileRecord[] | undefined> {
  try {
    const saved = JSON.parse(await Deno.readTextFile(path));
    return (saved.files as [string, number][]).map(([p, bytes]) => ({
      path: p,
      bytes,
    }));
  } catch {
    return undefined;
  }
}

/**
 * Rank 0's check of the data set when a run starts: keeps the list of `now`
 * in the run directory (written once per fingerprint, atomically) and, on a
 * resume whose checkpoint recorded another list, refuses or (with `allow`)
 * reports the change; see the module doc.
 *
 * @example
 * ```ts
 * import { fingerprintFiles } from "@scaling-vicreg/data/file-list-fingerprint";
 * import { checkDataFiles } from "@scaling-vicreg/train/data-change";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.png`, "abc");
 * const now = await fingerprintFiles(dir, [`${dir}/a.png`]);
 * const { record } = await checkDataFiles(dir, now, undefined);
 * console.log(record.count, record.list); // 1 "data-files-….json"
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param dir The run directory.
 * @param now The data set's files now.
 * @param recorded What the checkpoint resumed from recorded (`undefined`:
 *   a fresh run, or a checkpoint that recorded nothing).
 * @param options `allow`, and the checkpoint and step for messages.
 * @returns What the run records from now on, and a change it continues on.
 * @throws {DataChangedError} The files changed and `allow` is off.
 */
export async function checkDataFiles(
  dir: string,
  now: FileListFingerprint,
  recorded: RecordedDataFiles | undefined,
  options: CheckDataFilesOptions = {},
): Promise<DataFilesCheck> {
  const o = { ...DEFAULT_CHECK_DATA_FILES_OPTIONS, ...options };
  const record = {
    digest: now.digest,
    count: now.count,
    list: dataFilesName(now.digest),
  };
  if (recorded !== undefined && recorded.digest !== now.digest) {
    const saved = await readList(`${dir}/${recorded.list}`);
    const change = saved && compareFileLists(saved, now.files);
    const what = change
      ? describeDataChange(change)
      : `its file list, ${recorded.list}, is gone, so which files changed cannot be said`;
    const since =
      `the data set changed since ${o.checkpoint} (${recorded.count} files then, ${now.count} in ${now.root} now): ${what}`;
    if (!o.allow) {
      throw new DataChangedError(
        `--resume: ${since}; resuming would train on another order from step ${o.step}: restore the files, or pass --allow-data-change to continue on the ${now.count} files there are now`,
        change,
      );
    }
    await keepList(dir, record.list, now);
    return {
      record,
      warning:
        `--allow-data-change: ${since}; continuing on the ${now.count} files there are now (another order from step ${o.step} on; recorded in metrics.jsonl)`,
      event: {
        step: o.step,
        event: "data-change",
        from: recorded.list,
        to: record.list,
        removed: change?.removed.length ?? null,
        resized: change?.resized.length ?? null,
        added: change?.added.length ?? null,
        files: now.count,
      },
    };
  }
  await keepList(dir, record.list, now);
  return { record };
}

/** Writes the list file unless it is there already. */
async function keepList(
  dir: string,
  name: string,
  now: FileListFingerprint,
): Promise<void> {
  const path = `${dir}/${name}`;
  if (await Deno.stat(path).then(() => true, () => false)) return;
  const body = JSON.stringify({
    root: now.root,
    count: now.count,
    digest: now.digest,
    files: now.files.map((f) => [f.path, f.bytes]),
  });
  await writeFileAtomic(path, body + "\n");
}

/** Hex digits to bytes (a SHA-256's 32). */
function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32 && 2 * i < hex.length; i++) {
    out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

/**
 * Makes sure every rank reads the files rank 0 reads (a node whose copy of
 * the data set differs would silently train on other images): rank 0's
 * digest is broadcast, each rank compares its own, and the mismatches are
 * gathered, so every rank throws the same error or none does.
 *
 * @example
 * ```ts
 * import { SingleCommunicator } from "@scaling-vicreg/distributed/communicator";
 * import { agreeOnDataFiles } from "@scaling-vicreg/train/data-change";
 * await agreeOnDataFiles(new SingleCommunicator(), "ab".repeat(32)); // one rank agrees with itself
 * ```
 *
 * @param comm The ranks.
 * @param digest This rank's file-list digest (`undefined`: no files).
 * @returns Resolves when all agree.
 * @throws {DataChangedError} Naming the ranks whose files differ.
 */
export async function agreeOnDataFiles(
  comm: Communicator,
  digest: string | undefined,
): Promise<void> {
  if (comm.size === 1) return;
  const mine = hexBytes(digest ?? "");
  const first = await comm.broadcast(mine.slice(), 0);
  const differs = first.some((b, i) => b !== mine[i]) ? 1 : 0;
  const all = await comm.allGather(Float32Array.of(differs));
  const ranks = [...all.keys()].filter((r) => all[r] > 0);
  if (ranks.length > 0) {
    throw new DataChangedError(
      `Rank${ranks.length > 1 ? "s" : ""} ${ranks.join(", ")} read${
        ranks.length > 1 ? "" : "s"
      } other files than rank 0 (the data set's file lists differ): every rank must see the same data set`,
    );
  }
}

/** What {@linkcode settleDataFiles} needs of the run. */
export interface SettleDataFilesOptions {
  /** The run directory. */
  dir: string;
  /** The checkpoint a resume continues from. */
  checkpoint?: Checkpoint;
  /** `allow-data-change`. @default {false} */
  allow?: boolean;
  /** Told of a change the run continues on (rank 0). */
  onWarning?: (message: string) => void;
}

/**
 * The data-set rule of a run's start, on every rank: the ranks agree on the
 * files ({@linkcode agreeOnDataFiles}), then rank 0 checks them against the
 * checkpoint ({@linkcode checkDataFiles}), reports and records a change it
 * continues on, and returns what its checkpoints record.
 *
 * @example
 * ```ts
 * import { SingleCommunicator } from "@scaling-vicreg/distributed/communicator";
 * import { settleDataFiles } from "@scaling-vicreg/train/data-change";
 * const comm = new SingleCommunicator();
 * console.log(await settleDataFiles(comm, undefined, { dir: "runs/x" })); // undefined: procedural data
 * ```
 *
 * @param comm The ranks.
 * @param now The data set's files (`undefined` for the procedural set).
 * @param options The run directory, checkpoint, `allow` and a warning sink.
 * @returns What rank 0's checkpoints record (`undefined` on other ranks
 *   and without files).
 * @throws {DataChangedError} See {@linkcode checkDataFiles} and
 *   {@linkcode agreeOnDataFiles}.
 */
export async function settleDataFiles(
  comm: Communicator,
  now: FileListFingerprint | undefined,
  options: SettleDataFilesOptions,
): Promise<RecordedDataFiles | undefined> {
  if (now === undefined) return undefined;
  await agreeOnDataFiles(comm, now.digest);
  if (comm.rank !== 0) return undefined;
  const { dir, checkpoint, allow = false, onWarning = () => {} } = options;
  const step = checkpoint?.meta.step ?? 0;
  const checked = await guardWrite(
    `${dir}/${dataFilesName(now.digest)}`,
    () =>
      checkDataFiles(
        dir,
        now,
        checkpoint?.meta.state.dataFiles as RecordedDataFiles | undefined,
        {
          allow,
          step,
          ...(checkpoint ? { checkpoint: checkpointName(step) } : {}),
        },
      ),
  );
  if (checked.warning !== undefined) onWarning(checked.warning);
  const event = checked.event;
  if (event !== undefined) {
    await guardWrite(`${dir}/${METRICS_FILE}`, () => appendMetrics(dir, event));
  }
  return checked.record;
}
