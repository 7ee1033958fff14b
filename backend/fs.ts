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
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const temp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const file = await Deno.open(temp, { write: true, create: true, truncate: true });
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
