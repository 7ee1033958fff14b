import {
  assertClose,
  assertEquals,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafeTensor,
} from "./safetensors.ts";

const fixtureUrl = (name: string): URL =>
  new URL(`./testdata/${name}`, import.meta.url);

Deno.test("decodeSafetensors() reads F32, F16, BF16, F64, I64, I32 and U8 tensors", () => {
  const { tensors, metadata } = decodeSafetensors(
    Deno.readFileSync(fixtureUrl("mixed.safetensors")),
  );
  const expected = JSON.parse(
    Deno.readTextFileSync(fixtureUrl("mixed.safetensors.json")),
  ) as Record<string, number[]>;
  assertEquals(metadata, { format: "pt", note: "fixture" });
  assertEquals(tensors["a.f32"].shape, [2, 3]);
  for (const name of ["a.f32", "b.f16", "c.bf16", "d.f64"]) {
    assertEquals(tensors[name].dtype, "F32", name);
    assertTrue(tensors[name].data instanceof Float32Array, name);
    assertClose(tensors[name].data as Float32Array, expected[name], {
      rtol: 0,
      atol: 0,
      message: name,
    });
  }
  assertEquals(tensors["b.f16"].storedDtype, "F16");
  assertEquals(tensors["c.bf16"].shape, [3, 2]);
  assertEquals(Array.from(tensors["e.i64"].data as BigInt64Array), [
    -5n,
    2n ** 40n,
  ]);
  assertEquals(tensors["f.i32"], {
    dtype: "I32",
    shape: [1, 2],
    data: Int32Array.of(7, -8),
  });
  assertEquals(tensors["g.u8"].data, Uint8Array.of(0, 128, 255));
});

Deno.test("encodeSafetensors() round-trips through decodeSafetensors() with an 8-byte aligned header", () => {
  const tensors: Record<string, SafeTensor> = {
    "layer1.0.conv1.weight": {
      dtype: "F32",
      shape: [2, 1, 1, 2],
      data: Float32Array.of(1, -2, 3.5, 1e-30),
    },
    "b": { dtype: "F64", shape: [], data: Float64Array.of(0.5) },
    "c": { dtype: "I64", shape: [2], data: BigInt64Array.of(1n, -1n) },
    "d": { dtype: "U8", shape: [0], data: new Uint8Array(0) },
  };
  const bytes = encodeSafetensors(tensors, { format: "pt" });
  const headerLength = Number(
    new DataView(bytes.buffer).getBigUint64(0, true),
  );
  assertEquals(headerLength % 8, 0);
  const decoded = decodeSafetensors(bytes);
  assertEquals(decoded.metadata, { format: "pt" });
  assertEquals(
    decoded.tensors["layer1.0.conv1.weight"],
    tensors["layer1.0.conv1.weight"],
  );
  assertEquals(decoded.tensors.b.data, Float32Array.of(0.5));
  assertEquals(decoded.tensors.c, tensors.c);
  assertEquals(decoded.tensors.d.shape, [0]);
});

Deno.test("encodeSafetensors() writes the header layout of the reference format", () => {
  const bytes = encodeSafetensors({
    x: { dtype: "F32", shape: [1], data: Float32Array.of(1) },
  });
  const header = new TextDecoder().decode(bytes.subarray(8, bytes.length - 4));
  assertEquals(
    JSON.parse(header),
    { x: { dtype: "F32", shape: [1], data_offsets: [0, 4] } },
  );
  assertEquals(Array.from(bytes.subarray(bytes.length - 4)), [
    0,
    0,
    0x80,
    0x3f,
  ]);
});

Deno.test("decodeSafetensors() rejects truncated files and wrong offsets, naming the tensor", () => {
  const bytes = encodeSafetensors({
    w: { dtype: "F32", shape: [4], data: new Float32Array(4) },
  });
  assertThrows(
    () => decodeSafetensors(bytes.subarray(0, bytes.length - 1)),
    TypeError,
    '"w"',
  );
  assertThrows(
    () => decodeSafetensors(new Uint8Array(4)),
    TypeError,
    "8 bytes",
  );
  const bad = encodeSafetensors({
    w: { dtype: "F32", shape: [4], data: new Float32Array(4) },
  });
  // Rewrite the shape in place: [4] -> [5] keeps the header length.
  const text = new TextDecoder().decode(bad).replace(
    '"shape":[4]',
    '"shape":[5]',
  );
  assertThrows(
    () => decodeSafetensors(new TextEncoder().encode(text)),
    TypeError,
    'tensor "w"',
  );
});

Deno.test("encodeSafetensors() rejects data that does not match dtype or shape", () => {
  assertThrows(
    () =>
      encodeSafetensors({
        w: { dtype: "F32", shape: [2], data: Int32Array.of(1, 2) },
      }),
    TypeError,
    '"w"',
  );
  assertThrows(
    () =>
      encodeSafetensors({
        w: { dtype: "F32", shape: [3], data: Float32Array.of(1, 2) },
      }),
    TypeError,
    "3 elements",
  );
  assertThrows(
    () =>
      encodeSafetensors({
        w: { dtype: "BF16", shape: [1], data: Float32Array.of(1) },
      }),
    TypeError,
    "for writing",
  );
});

Deno.test("decodeSafetensors() rejects a null or non-object header entry naming it", () => {
  const file = (header: string) => {
    const text = new TextEncoder().encode(header);
    const out = new Uint8Array(8 + text.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
    out.set(text, 8);
    return out;
  };
  assertThrows(
    () => decodeSafetensors(file('{"w":null}')),
    TypeError,
    'Expected tensor "w" in the safetensors header to be a JSON object: received null',
  );
  assertThrows(
    () => decodeSafetensors(file('{"__metadata__":null}')),
    TypeError,
    "Expected __metadata__ in the safetensors header to be a JSON object",
  );
  assertThrows(
    () => decodeSafetensors(file('{"w":[1,2]}')),
    TypeError,
    'tensor "w"',
  );
});
