/**
 * Reading data-set folders: directory tests, sorted listings, image files by
 * extension (recursively) and the non-empty lines of a list file.
 *
 * @module
 */
import { join } from "node:path";
import { DatasetError } from "./decode.ts";

/** Whether `path` is a folder (false when it cannot be read). */
export async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** The entries of a folder, sorted by name. */
export async function readDirSorted(path: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  for await (const entry of Deno.readDir(path)) out.push(entry);
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Whether a file name ends with one of `extensions` (case-insensitive). */
export function hasExtension(
  name: string,
  extensions: readonly string[],
): boolean {
  const lower = name.toLowerCase();
  return extensions.some((e) => lower.endsWith(e));
}

/** Image files under `dir`, recursively, sorted by path; hidden entries skipped. */
export async function walkImages(
  dir: string,
  extensions: readonly string[],
): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readDirSorted(dir)) {
    if (entry.name.startsWith(".")) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory) out.push(...await walkImages(path, extensions));
    else if (entry.isFile && hasExtension(entry.name, extensions)) {
      out.push(path);
    }
  }
  return out;
}

/** The trimmed, non-empty lines of a list file; `what` names it in errors. */
export async function readLines(path: string, what: string): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (cause) {
    throw new DatasetError(
      `Expected ${what} at ${path}: cannot read it`,
      path,
      { cause },
    );
  }
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
}
