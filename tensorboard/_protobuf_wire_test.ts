import { assertEquals, assertThrows } from "@scaling-vicreg/backend/assert";
import { encodeVarint, ProtoWriter } from "./_protobuf_wire.ts";

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");

Deno.test("encodeVarint() writes seven bits a byte, low group first", () => {
  assertEquals(hex(encodeVarint(0)), "00");
  assertEquals(hex(encodeVarint(1)), "01");
  assertEquals(hex(encodeVarint(127)), "7f");
  assertEquals(hex(encodeVarint(128)), "80 01");
  // 300 = 0b10_0101100: 0101100 | 0x80 = 0xac, then 0b10 = 0x02 (the
  // protobuf guide's example).
  assertEquals(hex(encodeVarint(300)), "ac 02");
  // 2^32 needs more than the 32 bits of JavaScript's bit operators:
  // 32 = 4·7 + 4 bits, so four 0x80 bytes, then 2^4 = 0x10.
  assertEquals(hex(encodeVarint(2 ** 32)), "80 80 80 80 10");
  assertEquals(
    hex(encodeVarint(Number.MAX_SAFE_INTEGER)),
    "ff ff ff ff ff ff ff 0f",
  );
});

Deno.test("encodeVarint() refuses negative, fractional and unsafe values", () => {
  for (const bad of [-1, 0.5, 2 ** 53, NaN]) {
    assertThrows(() => encodeVarint(bad), RangeError, "varint");
  }
});

Deno.test("ProtoWriter writes each field's key (field << 3 | wire type) and value", () => {
  const bytes = new ProtoWriter()
    .varint(1, 150) // key 0x08; 150 = 0x96 0x01
    .double(2, 1) // key 0x11; 1.0 = 0x3ff0000000000000, little-endian
    .float(3, -2) // key 0x1d; -2.0f = 0xc0000000, little-endian
    .string(4, "hé") // key 0x22; length 3; 68, c3 a9 (UTF-8)
    .bytes(16, Uint8Array.of(7)) // key 16 << 3 | 2 = 130 = 0x82 0x01
    .finish();
  assertEquals(
    hex(bytes),
    "08 96 01 11 00 00 00 00 00 00 f0 3f 1d 00 00 00 c0 22 03 68 c3 a9 82 01 01 07",
  );
});

Deno.test("ProtoWriter refuses field number 0", () => {
  assertThrows(() => new ProtoWriter().varint(0, 1), RangeError, "field");
});
