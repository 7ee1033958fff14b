import {
  assertClose,
  assertEquals,
  assertThrows,
} from "@scaling-vicreg/backend/testing";
import { type NpyArray, readNpy, writeNpy } from "./npy.ts";

const fixture = (name: string): Uint8Array =>
  Deno.readFileSync(new URL(`./testdata/${name}`, import.meta.url));

Deno.test("readNpy() reads numpy's float32, int32, uint8, float64 and int64 files", () => {
  const f32 = readNpy(fixture("f32_2x3.npy"));
  assertEquals(f32.shape, [2, 3]);
  assertEquals(f32.dtype, "float32");
  assertEquals(Array.from(f32.data as Float32Array), [
    -0.5,
    -0.25,
    0,
    0.25,
    0.5,
    0.75,
  ]);
  const i32 = readNpy(fixture("i32_4.npy"));
  assertEquals([i32.dtype, i32.shape], ["int32", [4]]);
  assertEquals(Array.from(i32.data as Int32Array), [-2, -1, 0, 2 ** 31 - 1]);
  const u8 = readNpy(fixture("u8_2x2x3.npy"));
  assertEquals([u8.dtype, u8.shape], ["uint8", [2, 2, 3]]);
  assertEquals(u8.data[11], 220);
  const f64 = readNpy(fixture("f64_3.npy"));
  assertEquals(Array.from(f64.data as Float64Array), [Math.PI, -1e300, 0.1]);
  const i64 = readNpy(fixture("i64_2.npy"));
  assertEquals(Array.from(i64.data as BigInt64Array), [-(2n ** 40n), 7n]);
});

Deno.test("readNpy() reads scalars, empty arrays and version 2.0 headers", () => {
  const scalar = readNpy(fixture("f32_scalar.npy"));
  assertEquals(scalar.shape, []);
  assertEquals(Array.from(scalar.data as Float32Array), [1.5]);
  const empty = readNpy(fixture("f32_0x3.npy"));
  assertEquals([empty.shape, empty.data.length], [[0, 3], 0]);
  const v2 = readNpy(fixture("f32_v2.npy"));
  assertClose(v2.data as Float32Array, [0, 1, 2]);
});

Deno.test("readNpy() rejects Fortran order, big-endian, bad magic and truncated data", () => {
  assertThrows(
    () => readNpy(fixture("f64_fortran.npy")),
    TypeError,
    "fortran_order",
  );
  assertThrows(() => readNpy(fixture("f32_bigendian.npy")), TypeError, ">f4");
  assertThrows(() => readNpy(new Uint8Array(20)), TypeError, "NUMPY");
  const bytes = fixture("f32_2x3.npy");
  assertThrows(
    () => readNpy(bytes.subarray(0, bytes.length - 4)),
    TypeError,
    "Expected 24 bytes",
  );
});

Deno.test("writeNpy() writes the same bytes as numpy.save", () => {
  const cases: [string, NpyArray][] = [
    ["f32_2x3.npy", {
      shape: [2, 3],
      dtype: "float32",
      data: Float32Array.of(-0.5, -0.25, 0, 0.25, 0.5, 0.75),
    }],
    ["i32_4.npy", {
      shape: [4],
      dtype: "int32",
      data: Int32Array.of(-2, -1, 0, 2 ** 31 - 1),
    }],
    ["f32_scalar.npy", {
      shape: [],
      dtype: "float32",
      data: Float32Array.of(1.5),
    }],
    ["i64_2.npy", {
      shape: [2],
      dtype: "int64",
      data: BigInt64Array.of(-(2n ** 40n), 7n),
    }],
  ];
  for (const [name, array] of cases) {
    assertEquals(writeNpy(array), fixture(name), name);
  }
});

Deno.test("writeNpy() round-trips through readNpy() and switches to version 2.0 for long headers", () => {
  const array: NpyArray = {
    shape: [3, 1, 2],
    dtype: "uint8",
    data: Uint8Array.of(1, 2, 3, 4, 5, 6),
  };
  assertEquals(readNpy(writeNpy(array)), array);
  const long: NpyArray = {
    shape: new Array(30000).fill(1),
    dtype: "float32",
    data: Float32Array.of(2),
  };
  const bytes = writeNpy(long);
  assertEquals(bytes[6], 2);
  assertEquals(readNpy(bytes).shape.length, 30000);
});

Deno.test("writeNpy() rejects data that does not match dtype or shape", () => {
  assertThrows(
    () => writeNpy({ shape: [2], dtype: "int32", data: Float32Array.of(1, 2) }),
    TypeError,
    "int32",
  );
  assertThrows(
    () =>
      writeNpy({ shape: [3], dtype: "float32", data: Float32Array.of(1, 2) }),
    TypeError,
    "Expected 3 elements",
  );
});
