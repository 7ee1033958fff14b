/**
 * CRC-32C (Castagnoli), the checksum of TFRecord framing, and TFRecord's
 * masked form of it.
 *
 * @module
 */

/** The reflected CRC-32C polynomial 0x1EDC6F41 (RFC 3720, appendix B.4). */
const POLYNOMIAL = 0x82f63b78;

let table: Uint32Array | undefined;

/** The byte-at-a-time lookup table, built on first use. */
function crcTable(): Uint32Array {
  if (table !== undefined) return table;
  table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/**
 * The CRC-32C (Castagnoli) of `data`: reflected polynomial 0x82F63B78,
 * initial value and final XOR 0xFFFFFFFF (RFC 3720, appendix B.4; the
 * checksum of iSCSI, ext4 and TFRecord). Pass the CRC of the bytes before
 * `data` as `previous` to checksum a stream in pieces.
 *
 * @example
 * ```ts
 * import { crc32c } from "@scaling-vicreg/tensorboard/crc32c";
 * const crc = crc32c(new TextEncoder().encode("123456789"));
 * console.log(crc.toString(16)); // "e3069283", the published check value
 * ```
 *
 * @param data The bytes.
 * @param previous The CRC-32C of the bytes before `data`. @default {0}
 * @returns The checksum, an unsigned 32-bit integer.
 */
export function crc32c(data: Uint8Array, previous: number = 0): number {
  const t = crcTable();
  let c = ~previous >>> 0;
  for (let i = 0; i < data.length; i++) {
    c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  }
  return ~c >>> 0;
}

/**
 * TFRecord's masked CRC-32C of `data`: the CRC rotated right by 15 bits plus
 * 0xA282EAD8, modulo 2³² (`((crc >>> 15) | (crc << 17)) + 0xa282ead8`, as
 * TensorFlow's `crc32c::Mask`). Masking keeps a checksum of data that itself
 * holds checksums from being a weak one.
 *
 * @example
 * ```ts
 * import { maskedCrc32c } from "@scaling-vicreg/tensorboard/crc32c";
 * const masked = maskedCrc32c(new TextEncoder().encode("123456789"));
 * console.log(masked.toString(16)); // "c78ab0e5"
 * ```
 *
 * @param data The bytes.
 * @returns The masked checksum, an unsigned 32-bit integer.
 */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c(data);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}
