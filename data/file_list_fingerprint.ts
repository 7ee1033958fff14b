/**
 * What a resumed run checks of the data set it trains on: the files it reads,
 * in index order, each with its size, and the SHA-256 of that list. The
 * loader's order is a function of the seed and the list, so a list that
 * changed (a file removed, one that no longer passes the up-front check, one
 * rewritten at another size, one added) means another order from the resumed
 * step on; {@linkcode compareFileLists} says which files. Paths are relative
 * to the data set's root, so a data set copied to another place (a node's
 * scratch disk) is the same; modification times are left out for the same
 * reason (a copy gets new ones). A file rewritten at the same size is not
 * seen; one that then fails to decode is skipped and reported as ever.
 *
 * @module
 */
import { sha256Hex } from "@scaling-vicreg/backend/fs";

/** One file of a data set: its path below the root, and its size. */
export interface FileRecord {
  /** Path relative to the data set's root (`/`-separated). */
  path: string;
  /** Size in bytes (−1 when it could not be read). */
  bytes: number;
}

/** A data set's file list, and its digest. */
export interface FileListFingerprint {
  /** The data set's root when it was taken (for messages only). */
  root: string;
  /** Number of files. */
  count: number;
  /** SHA-256 (hex) of the list: one `path\tbytes` line per file, in order. */
  digest: string;
  /** The files, in index order. */
  files: FileRecord[];
}

/** Options of {@linkcode fingerprintFiles}. */
export interface FingerprintFilesOptions {
  /**
   * Files `stat`ed at once.
   * @default {16}
   */
  concurrency?: number;
}

/** The defaults of {@linkcode FingerprintFilesOptions}. */
export const DEFAULT_FINGERPRINT_FILES_OPTIONS: Required<
  FingerprintFilesOptions
> = { concurrency: 16 };

/**
 * The path of `path` below `root` (`path` itself when it is not below it).
 */
function relative(root: string, path: string): string {
  const base = root.replace(/\/+$/, "");
  return base !== "" && path.startsWith(`${base}/`)
    ? path.slice(base.length + 1)
    : path;
}

/**
 * The digest of a file list (one `path\tbytes\n` line per file, in order).
 *
 * @example
 * ```ts
 * import { fileListDigest } from "@scaling-vicreg/data/file-list-fingerprint";
 * console.log((await fileListDigest([{ path: "a.png", bytes: 3 }])).length); // 64
 * ```
 *
 * @param files The files, in index order.
 * @returns SHA-256, hex.
 */
export async function fileListDigest(
  files: readonly FileRecord[],
): Promise<string> {
  return await sha256Hex(files.map((f) => `${f.path}\t${f.bytes}\n`).join(""));
}

/**
 * Takes the fingerprint of a data set's files: `stat`s each (a few at a
 * time) for its size.
 *
 * @example
 * ```ts
 * import { fingerprintFiles } from "@scaling-vicreg/data/file-list-fingerprint";
 * const root = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${root}/a.png`, "abc");
 * const print = await fingerprintFiles(root, [`${root}/a.png`]);
 * console.log(print.count, print.files); // 1 [{ path: "a.png", bytes: 3 }]
 * await Deno.remove(root, { recursive: true });
 * ```
 *
 * @param root The data set's root.
 * @param paths Its files, in index order.
 * @param options How many are `stat`ed at once.
 * @returns The fingerprint.
 */
export async function fingerprintFiles(
  root: string,
  paths: readonly string[],
  options: FingerprintFilesOptions = {},
): Promise<FileListFingerprint> {
  const { concurrency } = { ...DEFAULT_FINGERPRINT_FILES_OPTIONS, ...options };
  const files: FileRecord[] = paths.map((p) => ({
    path: relative(root, p),
    bytes: -1,
  }));
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const i = next++;
      files[i].bytes = await Deno.stat(paths[i]).then((s) => s.size, () => -1);
    }
  };
  await Promise.all(
    Array.from({ length: Math.max(1, concurrency) }, worker),
  );
  return {
    root,
    count: files.length,
    digest: await fileListDigest(files),
    files,
  };
}

/** How a file list changed: see {@linkcode compareFileLists}. */
export interface FileListChange {
  /** Files of the saved list that are gone (removed, or no longer usable). */
  removed: string[];
  /** Files of both lists whose size changed. */
  resized: { path: string; from: number; to: number }[];
  /** Files that are new. */
  added: string[];
  /** Whether the files both lists hold are in another order. */
  reordered: boolean;
}

/**
 * What changed between a saved file list and the current one.
 *
 * @example
 * ```ts
 * import { compareFileLists } from "@scaling-vicreg/data/file-list-fingerprint";
 * const change = compareFileLists(
 *   [{ path: "a", bytes: 1 }, { path: "b", bytes: 2 }],
 *   [{ path: "b", bytes: 3 }, { path: "c", bytes: 1 }],
 * );
 * console.log(change);
 * // { removed: ["a"], resized: [{ path: "b", from: 2, to: 3 }], added: ["c"], reordered: false }
 * ```
 *
 * @param saved The list the run trained on.
 * @param now The list found now.
 * @returns The removed, resized and added files, and whether the common ones
 *   moved.
 */
export function compareFileLists(
  saved: readonly FileRecord[],
  now: readonly FileRecord[],
): FileListChange {
  const current = new Map(now.map((f, i) => [f.path, { ...f, i }]));
  const before = new Set(saved.map((f) => f.path));
  const removed: string[] = [];
  const resized: FileListChange["resized"] = [];
  const order: number[] = [];
  for (const f of saved) {
    const c = current.get(f.path);
    if (c === undefined) {
      removed.push(f.path);
      continue;
    }
    order.push(c.i);
    if (c.bytes !== f.bytes) {
      resized.push({ path: f.path, from: f.bytes, to: c.bytes });
    }
  }
  return {
    removed,
    resized,
    added: now.filter((f) => !before.has(f.path)).map((f) => f.path),
    reordered: order.some((i, k) => k > 0 && i < order[k - 1]),
  };
}
