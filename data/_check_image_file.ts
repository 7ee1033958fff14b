/**
 * The cheap up-front check of one image file: readable, and a header
 * (first 64 KiB) that `checkImageHeader` accepts.
 *
 * @module
 */
import { checkImageHeader, DatasetError } from "./decode.ts";

const HEAD_BYTES = 64 * 1024;

/** Throws the file's {@linkcode DatasetError} if it cannot be read or its header is refused. */
export async function checkImageFile(
  path: string,
  maxPixels: number,
): Promise<void> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new DatasetError(`Cannot read ${path}: ${why}`, path, { cause });
  }
  try {
    const head = new Uint8Array(HEAD_BYTES);
    let n = 0;
    while (n < head.length) {
      const got = await file.read(head.subarray(n));
      if (got === null) break;
      n += got;
    }
    checkImageHeader(head.subarray(0, n), path, maxPixels);
  } finally {
    file.close();
  }
}
