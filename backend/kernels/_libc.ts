/**
 * The few glibc functions the `native` backend's memory calls: one lazy
 * opening of `libc.so.6`, shared by `_host_memory.ts` (`madvise`) and
 * `_malloc.ts` (`mallopt`).
 *
 * @module
 */
import { openFirst } from "./_ffi.ts";

const SYMBOLS = {
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  mallopt: { parameters: ["i32", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** glibc's bound functions. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let libc: Libc | null | undefined;

/**
 * glibc, opened on first use; `null` off Linux, without FFI permission, or
 * where no `libc.so.6` opens (then callers leave memory as it is).
 *
 * @returns Its functions, or `null`.
 */
export function openLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (
    Deno.build.os === "linux" &&
    Deno.permissions.querySync({ name: "ffi" }).state === "granted"
  ) {
    const found = openFirst(["libc.so.6"], SYMBOLS);
    if (found.path !== undefined) libc = found.lib.symbols;
  }
  return libc;
}
