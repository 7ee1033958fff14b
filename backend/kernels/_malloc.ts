/**
 * glibc's `malloc` told to keep the memory a process frees for its later
 * allocations, as PyTorch's and TensorFlow's caching allocators do, instead
 * of unmapping each large buffer when it is freed.
 *
 * By default glibc serves every allocation above its mmap threshold (at
 * most 32 MiB) with a fresh `mmap` and gives it back with `munmap` on free,
 * so each new activation map of a `native` step is fresh memory that the
 * kernel zeroes page by page on first write: on the 2-core EPYC about a
 * fifth of the main thread's time in a ResNet-50x2 step at batch 32 was
 * `clear_page_erms` and its page faults. With `M_MMAP_MAX` = 0 and a 2 GiB
 * `M_TRIM_THRESHOLD`, freed buffers stay in the heap and the next ones
 * reuse them; the process's resident memory then stays near its peak
 * instead of falling between steps (the peak itself is the same).
 *
 * `VICREG_KEEP_FREED=off` leaves glibc's defaults. Elsewhere than Linux
 * with glibc, or without FFI permission, nothing changes.
 *
 * @module
 */
import { grantedEnv } from "./_ffi.ts";
import { openLibc } from "./_libc.ts";

/** `M_TRIM_THRESHOLD`: free bytes at the heap's top before it shrinks. */
const M_TRIM_THRESHOLD = -1;
/** `M_MMAP_MAX`: how many allocations may be separate mappings. */
const M_MMAP_MAX = -4;
/** The largest `int` threshold: 2 GiB free at the top before a trim. */
const TRIM_BYTES = 2 ** 31 - 1;

let applied: boolean | undefined;

/**
 * Makes glibc keep freed memory for reuse (once per process; later calls
 * return the first answer).
 *
 * @returns Whether glibc took both settings.
 */
export function keepFreedMemory(): boolean {
  if (applied !== undefined) return applied;
  applied = false;
  const libc = grantedEnv("VICREG_KEEP_FREED") === "off" ? null : openLibc();
  if (libc === null) return applied;
  const { mallopt } = libc;
  // mallopt returns 1 on success.
  applied = mallopt(M_MMAP_MAX, 0) === 1 &&
    mallopt(M_TRIM_THRESHOLD, TRIM_BYTES) === 1;
  return applied;
}
