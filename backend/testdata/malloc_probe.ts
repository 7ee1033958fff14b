/**
 * Prints, as JSON, where glibc put a 64 MiB `malloc` once the `native`
 * backend started, and what freeing it gave back (`mallinfo2`), for
 * `kernels/malloc_test.ts`.
 *
 * @module
 */
import { useBackend } from "../mod.ts";

const SIZE_T = Array(10).fill("usize") as "usize"[];
const libc = Deno.dlopen("libc.so.6", {
  mallinfo2: { parameters: [], result: { struct: SIZE_T } },
  malloc: { parameters: ["usize"], result: "pointer" },
  free: { parameters: ["pointer"], result: "void" },
});
// arena, ordblks, smblks, hblks, hblkhd (bytes in mappings), …
const info = () => {
  const [arena, , , , mapped] = new BigUint64Array(
    libc.symbols.mallinfo2().buffer,
  );
  return { arena: Number(arena), mapped: Number(mapped) };
};
await useBackend("native");
const before = info();
const p = libc.symbols.malloc(BigInt(64 * 2 ** 20));
// Write it, so that nothing lazily skips the allocation.
new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p!, 64 * 2 ** 20)).fill(1);
const held = info();
libc.symbols.free(p);
const freed = info();
console.log(JSON.stringify({
  mappedGrowth: held.mapped - before.mapped,
  heapGrowth: held.arena - before.arena,
  heapAfterFree: freed.arena - before.arena,
}));
