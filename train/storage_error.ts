/**
 * A run-directory write that failed because the disk cannot take it: full
 * (`ENOSPC`), over quota (`EDQUOT`), read-only (`EROFS`), or past a file-size
 * limit (`EFBIG`: `ulimit -f`, or the file system's largest file). Such a
 * failure stops the run with one line naming the file, the free space and
 * the checkpoint a `--resume` continues from; every run-directory write is
 * atomic (a temp file renamed into place), so the failed one leaves nothing
 * half-written behind and the previous checkpoint stays the newest.
 *
 * @module
 */
import { freeDiskBytes } from "@scaling-vicreg/backend/fs";
import { checkpointName, listCheckpoints } from "./checkpoint.ts";

/** What each error code means, for messages. */
const MEANINGS: Readonly<Record<string, string>> = {
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EFBIG:
    "file too large (a file-size limit such as ulimit -f, or the file system's largest file)",
};

/** The OS error numbers of those codes, where Deno gives only the number. */
const ERRNO: Readonly<Record<string, Readonly<Record<number, string>>>> = {
  linux: { 28: "ENOSPC", 122: "EDQUOT", 30: "EROFS", 27: "EFBIG" },
  darwin: { 28: "ENOSPC", 69: "EDQUOT", 30: "EROFS", 27: "EFBIG" },
};

/**
 * The storage code of a failed write (`ENOSPC`, `EDQUOT`, `EROFS`, `EFBIG`),
 * from the error's `code` or its "(os error N)".
 *
 * @example
 * ```ts
 * import { storageErrorCode } from "@scaling-vicreg/train/storage-error";
 * const full = new Error("No space left on device (os error 28)");
 * console.log(storageErrorCode(full)); // "ENOSPC" (on Linux and macOS)
 * console.log(storageErrorCode(new Error("other"))); // undefined
 * ```
 *
 * @param error What a write threw.
 * @returns The code, or `undefined` for any other failure.
 */
export function storageErrorCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && code in MEANINGS) return code;
  const errno = /\(os error (\d+)\)/.exec(error.message);
  if (errno === null) return undefined;
  return (ERRNO[Deno.build.os] ?? ERRNO.linux)[Number(errno[1])];
}

/** A write the disk could not take; see the module doc. */
export class StorageError extends Error {
  /** The file that could not be written. */
  readonly path: string;
  /** `ENOSPC`, `EDQUOT`, `EROFS` or `EFBIG`. */
  readonly code: string;
  /** Bytes free on its file system when it failed, where known. */
  readonly freeBytes?: number;

  /**
   * Makes the error.
   *
   * @param path The file.
   * @param code The storage code.
   * @param message The one-line message.
   * @param options `freeBytes`, and the `cause` (the write's error).
   */
  constructor(
    path: string,
    code: string,
    message: string,
    options: ErrorOptions & { freeBytes?: number } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "StorageError";
    this.path = path;
    this.code = code;
    if (options.freeBytes !== undefined) this.freeBytes = options.freeBytes;
  }
}

/** Options of {@linkcode guardWrite}. */
export interface GuardWriteOptions {
  /**
   * The run directory, whose newest checkpoint (left intact by the failed
   * write) the message names.
   * @default {undefined} the folder of `path`
   */
  dir?: string;
}

/** The defaults of {@linkcode GuardWriteOptions}. */
export const DEFAULT_GUARD_WRITE_OPTIONS: { dir: string | undefined } = {
  dir: undefined,
};

function bytesText(bytes: number): string {
  if (bytes < 2 ** 20) return `${(bytes / 1024).toFixed(0)} KiB`;
  if (bytes < 2 ** 30) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/**
 * Runs a run-directory write and turns a failure of the disk into a
 * {@linkcode StorageError}: "Cannot write <path>: no space left on the
 * device (ENOSPC); 12 KiB free there; the last checkpoint, <json>, is
 * intact: make room, then run the same command with --resume". Any other
 * error passes through as it is.
 *
 * @example
 * ```ts
 * import { guardWrite, StorageError } from "@scaling-vicreg/train/storage-error";
 * try {
 *   await guardWrite("/runs/a/metrics.jsonl", () => {
 *     throw new Error("No space left on device (os error 28)");
 *   });
 * } catch (error) {
 *   console.log(error instanceof StorageError); // true
 * }
 * ```
 *
 * @param path The file being written.
 * @param write The write.
 * @param options The run directory.
 * @returns What `write` returns.
 * @throws {StorageError} The disk could not take the write.
 */
export async function guardWrite<T>(
  path: string,
  write: () => Promise<T> | T,
  options: GuardWriteOptions = {},
): Promise<T> {
  try {
    return await write();
  } catch (error) {
    const code = storageErrorCode(error);
    if (code === undefined) throw error;
    const dir = options.dir ?? DEFAULT_GUARD_WRITE_OPTIONS.dir ??
      path.replace(/\/[^/]*$/, "");
    const newest = (await listCheckpoints(dir).catch(() => []))[0];
    const checkpoint = newest === undefined ? "" : checkpointName(newest);
    const freeBytes = freeDiskBytes(path);
    const free = freeBytes === undefined
      ? "free space unknown"
      : `${bytesText(freeBytes)} free there`;
    const kept = checkpoint === ""
      ? "no checkpoint had been written yet"
      : `the last checkpoint, ${checkpoint}, is intact`;
    const remedy = code === "EROFS"
      ? "make the folder writable"
      : code === "EFBIG"
      ? "raise the limit"
      : "make room";
    const next = checkpoint === ""
      ? "start the run again"
      : "run the same command with --resume";
    throw new StorageError(
      path,
      code,
      `Cannot write ${path}: ${
        MEANINGS[code]
      } (${code}); ${free}; ${kept}: ${remedy}, then ${next}`,
      { cause: error, ...(freeBytes !== undefined ? { freeBytes } : {}) },
    );
  }
}
