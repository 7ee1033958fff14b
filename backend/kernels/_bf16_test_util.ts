/**
 * bfloat16 rounding in JavaScript, for the bf16 tests: what a float32 → bf16
 * conversion (round to nearest, ties to even) keeps of each value, written
 * independently of oneDNN's reorder.
 *
 * @module
 */

/**
 * Each value rounded to the nearest bfloat16 (ties to even), as float32.
 *
 * @param values Finite float32 values.
 * @returns A new array: the top 16 bits of each rounded value, the low 16
 * bits zero.
 */
export function roundToBf16(values: Float32Array): Float32Array {
  const out = Float32Array.from(values);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    const tie = (b >>> 16) & 1;
    bits[i] = ((b + 0x7fff + tie) >>> 0) & 0xffff0000;
  }
  return out;
}
