/**
 * Crash-safe file writes shared by every member that saves something
 * (checkpoints, caches, reports): write a temporary file beside the target,
 * flush it to disk, then rename it over the target, so a reader sees either
 * the old file or the new one, never half of one.
 *
 * @module
 */

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
