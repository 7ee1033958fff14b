/**
 * New float32 buffers for the `native` backend's outputs, with large ones
 * asked to be backed by transparent huge pages (`madvise(MADV_HUGEPAGE)`).
 *
 * A fresh `Float32Array` of tens of megabytes is a fresh `mmap` that the
 * kernel fills one 4 KiB page at a time on first write: on the 2-core VM a
 * ResNet-50x2 step at batch 32 took 2.2 M page faults and spent a third of
 * its CPU time in the kernel. Where the machine's THP setting is `madvise`
 * (Debian's default), advising the buffer's 2 MiB-aligned interior before
 * the first write cuts that to one fault per 2 MiB. Where `libc.so.6` cannot
 * be opened (macOS, Windows) or FFI is not granted, buffers are plain.
 *
 * @module
 */
import { openLibc } from "./_libc.ts";

/** A transparent huge page's size on x86-64 and arm64 (4 KiB base pages). */
export const HUGE_PAGE_BYTES = 2 * 1024 * 1024;
/** Buffers from this size up are advised (smaller ones span no huge page). */
export const HUGE_PAGE_MIN_BYTES = 2 * HUGE_PAGE_BYTES;
/** `MADV_HUGEPAGE` (Linux). */
const MADV_HUGEPAGE = 14;

/**
 * A new zeroed `Float32Array`; from {@linkcode HUGE_PAGE_MIN_BYTES} up, its
 * whole 2 MiB pages are advised to be huge pages before anything writes
 * them. The advice is a hint: the values and the length are the same
 * either way.
 *
 * @param length Its number of floats.
 * @returns The buffer.
 */
export function hostFloat32(length: number): Float32Array {
  const out = new Float32Array(length);
  if (out.byteLength < HUGE_PAGE_MIN_BYTES) return out;
  const libc = openLibc();
  if (libc === null) return out;
  const page = BigInt(HUGE_PAGE_BYTES);
  const start = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(out)));
  const first = (start + page - 1n) / page * page;
  const end = (start + BigInt(out.byteLength)) / page * page;
  if (end > first) {
    // A refusal (EINVAL where THP is compiled out) leaves 4 KiB pages.
    libc.madvise(Deno.UnsafePointer.create(first), end - first, MADV_HUGEPAGE);
  }
  return out;
}
