import { assertEquals, assertTrue } from "../testing.ts";
import {
  hostFloat32,
  HUGE_PAGE_BYTES,
  HUGE_PAGE_MIN_BYTES,
} from "./_host_memory.ts";

/** The `VmFlags` of the mapping of /proc/self/smaps that holds `address`. */
function vmFlagsAt(address: bigint): string[] | undefined {
  let inside = false;
  for (const line of Deno.readTextFileSync("/proc/self/smaps").split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) {
      inside = BigInt(`0x${range[1]}`) <= address &&
        address < BigInt(`0x${range[2]}`);
    } else if (inside && line.startsWith("VmFlags:")) {
      return line.slice("VmFlags:".length).trim().split(/\s+/);
    }
  }
  return undefined;
}

const thp = (() => {
  try {
    return Deno.readTextFileSync(
      "/sys/kernel/mm/transparent_hugepage/enabled",
    );
  } catch {
    return undefined;
  }
})();

Deno.test("hostFloat32() gives zeroed buffers of the length asked, small and large", () => {
  for (const length of [0, 1, 1000, HUGE_PAGE_MIN_BYTES / 4 + 3]) {
    const a = hostFloat32(length);
    assertTrue(a instanceof Float32Array);
    assertEquals(a.length, length);
    assertTrue(a.every((v) => v === 0));
    a.fill(1.5);
    assertEquals(a[length - 1] ?? 1.5, 1.5);
  }
});

Deno.test({
  name:
    "hostFloat32() marks a large buffer's whole 2 MiB pages for huge pages (VmFlags hg) and leaves a small one alone",
  ignore: Deno.build.os !== "linux" || thp === undefined ||
    !thp.includes("[madvise]"),
  fn() {
    const large = hostFloat32(8 * HUGE_PAGE_BYTES / 4);
    const start = BigInt(
      Deno.UnsafePointer.value(Deno.UnsafePointer.of(large)),
    );
    const page = BigInt(HUGE_PAGE_BYTES);
    const interior = (start + page - 1n) / page * page + page / 2n;
    assertTrue(vmFlagsAt(interior)?.includes("hg") === true, "large: no hg");
    const small = hostFloat32(1024);
    const at = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(small)));
    assertEquals(vmFlagsAt(at)?.includes("hg"), false);
    large[large.length - 1] = 1;
    assertEquals(large[0], 0);
  },
});
