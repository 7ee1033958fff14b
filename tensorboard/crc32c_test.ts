import { assertEquals } from "@scaling-vicreg/backend/assert";
import { crc32c, maskedCrc32c } from "./crc32c.ts";

const ascii = (s: string) => new TextEncoder().encode(s);

Deno.test("crc32c() gives the published check value of '123456789'", () => {
  assertEquals(crc32c(ascii("123456789")), 0xe3069283);
});

Deno.test("crc32c() matches the test vectors of RFC 3720, appendix B.4", () => {
  // The RFC lists each CRC as the bytes sent, least significant first:
  // "aa 36 91 8a" is 0x8a9136aa.
  assertEquals(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assertEquals(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assertEquals(
    crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)),
    0x46dd794e,
  );
  assertEquals(
    crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)),
    0x113fdb5c,
  );
});

Deno.test("crc32c() of nothing is 0, and a stream checksummed in pieces equals the whole", () => {
  assertEquals(crc32c(new Uint8Array(0)), 0);
  const whole = ascii("123456789");
  assertEquals(
    crc32c(whole.subarray(4), crc32c(whole.subarray(0, 4))),
    0xe3069283,
  );
});

Deno.test("maskedCrc32c() rotates right by 15 and adds 0xa282ead8", () => {
  // 0xe3069283 rotated right by 15 is 0x2507c60d (its low 15 bits
  // 0x1283 move to the top); + 0xa282ead8 = 0xc78ab0e5 (mod 2^32), the value
  // TensorBoard's own masked_crc32c gives for b"123456789".
  assertEquals(maskedCrc32c(ascii("123456789")), 0xc78ab0e5);
  // 0 rotates to 0: the mask alone.
  assertEquals(maskedCrc32c(new Uint8Array(0)), 0xa282ead8);
});
