/**
 * Crash-safe file writes shared by every member that saves something
 * (checkpoints, caches, reports): write a temporary file beside the target,
 * flush it to disk, then rename it over the target, so a reader sees either
 * the old file or the new one, never half of one.
 *
 * @module
 */
import { statfsSync } from "node:fs";

/**
 * Writes `data` to `path` atomically (temp file + fsync + rename).
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "@scaling-vicreg/backend/fs";
 * const path = await Deno.makeTempFile();
 * await writeFileAtomic(path, "hello");
 * ```
 *
 * @param path The target file.
 * @param data Bytes, or text written as UTF-8.
 * @returns Resolves once the file is in place.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
): Promise<void> {
  const bytes = typeof data === "string"
    ? new TextEncoder().encode(data)
    : data;
  const temp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const file = await Deno.open(temp, {
      write: true,
      create: true,
      truncate: true,
    });
    try {
      let written = 0;
      while (written < bytes.length) {
        written += await file.write(bytes.subarray(written));
      }
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/**
 * The SHA-256 of bytes or of UTF-8 text, as lowercase hex: the identity used
 * by checkpoints, caches and feature-cache keys.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "@scaling-vicreg/backend/fs";
 * await sha256Hex("abc"); // "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
 * ```
 *
 * @param input Bytes, or text hashed as UTF-8.
 * @returns 64 hex digits.
 */
export async function sha256Hex(input: Uint8Array | string): Promise<string> {
  const bytes = typeof input === "string"
    ? new TextEncoder().encode(input)
    : input;
  const digest = await crypto.subtle.digest(
    "SHA-256",
    bytes as Uint8Array<ArrayBuffer>,
  );
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/**
 * Whether a path exists and can be stat'ed (file, folder or anything else).
 *
 * @example
 * ```ts
 * import { exists } from "@scaling-vicreg/backend/fs";
 * console.log(await exists("/")); // true
 * ```
 *
 * @param path The path.
 * @returns `true` when `Deno.stat` succeeds, else `false`.
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether a process with this pid exists on this host: `/proc/<pid>` where
 * there is a `/proc`, else `ps -p`; `true` (the safe side) when neither can
 * tell.
 *
 * @example
 * ```ts
 * import { processExists } from "@scaling-vicreg/backend/fs";
 * console.log(await processExists(Deno.pid)); // true
 * ```
 *
 * @param pid The process id.
 * @returns Whether it runs (zombies included).
 */
export async function processExists(pid: number): Promise<boolean> {
  if (pid === Deno.pid) return true;
  if (await exists("/proc/self")) return await exists(`/proc/${pid}`);
  try {
    const { code } = await new Deno.Command("ps", {
      args: ["-p", String(pid)],
      stdout: "null",
      stderr: "null",
    }).output();
    return code === 0;
  } catch {
    return true;
  }
}

/** Options of {@linkcode removeStaleTempFiles}. */
export interface RemoveStaleTempFilesOptions {
  /** Whether the writer with this pid still runs; by default {@linkcode processExists}. */
  isAlive?: (pid: number) => Promise<boolean>;
}

/**
 * Deletes the temporary files that {@linkcode writeFileAtomic} left in `dir`
 * (not below it) when its writer was killed mid-write: `<name>.tmp-<pid>-<id>`
 * whose pid no longer runs. Files of live writers are left alone.
 *
 * @example
 * ```ts
 * import { removeStaleTempFiles } from "@scaling-vicreg/backend/fs";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.json.tmp-999999999-abcd1234`, "{");
 * console.log(await removeStaleTempFiles(dir, { isAlive: async () => false }));
 * // ["a.json.tmp-999999999-abcd1234"]
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param dir The folder.
 * @param options See {@linkcode RemoveStaleTempFilesOptions}.
 * @returns The names removed.
 */
export async function removeStaleTempFiles(
  dir: string,
  options: RemoveStaleTempFilesOptions = {},
): Promise<string[]> {
  const { isAlive = processExists } = options;
  const removed: string[] = [];
  const alive = new Map<number, boolean>();
  try {
    for await (const entry of Deno.readDir(dir)) {
      const m = /\.tmp-(\d+)-[0-9a-f]{8}$/.exec(entry.name);
      if (!m || !entry.isFile) continue;
      const pid = Number(m[1]);
      if (!alive.has(pid)) alive.set(pid, await isAlive(pid));
      if (alive.get(pid)) continue;
      await Deno.remove(`${dir}/${entry.name}`);
      removed.push(entry.name);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return removed;
    throw error;
  }
  return removed.sort();
}

/**
 * The bytes this user may still write on the file system that holds `path`
 * (`statfs`: available blocks × block size, what `df` calls "Avail"), asked
 * of the nearest existing folder at or above `path`; for the message of a
 * write that failed for lack of room.
 *
 * @example
 * ```ts
 * import { freeDiskBytes } from "@scaling-vicreg/backend/fs";
 * console.log(freeDiskBytes(Deno.cwd())); // e.g. 83214589952
 * ```
 *
 * @param path A file or folder (it need not exist).
 * @returns The bytes, or `undefined` where the file system cannot say.
 */
export function freeDiskBytes(path: string): number | undefined {
  let at = path;
  for (let depth = 0; depth < 64; depth++) {
    try {
      const s = statfsSync(at);
      return Number(s.bavail) * Number(s.bsize);
    } catch {
      const up = at.replace(/\/+[^/]*\/*$/, "");
      if (up === at) break;
      at = up === "" ? (at.startsWith("/") ? "/" : ".") : up;
    }
  }
  return undefined;
}
