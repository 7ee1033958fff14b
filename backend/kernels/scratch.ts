/**
 * Reusable scratch buffers for the BLAS convolutions: grown on demand, kept
 * between calls, and the limit the convolutions split a batch to fit.
 *
 * @module
 */

/** Reusable scratch buffers, grown on demand and kept between calls. */
export class Scratch {
  #slots: Float32Array[] = [];
  #ones: Float32Array = new Float32Array(0);
  /** Largest buffer, in floats, the convolutions plan their chunks for. */
  readonly maxFloats: number;

  /**
   * Makes an empty set of buffers.
   *
   * @param maxFloats Largest buffer in floats (the batch is split to fit).
   */
  constructor(maxFloats: number = 1 << 24) {
    if (!(maxFloats >= 1)) {
      throw new RangeError(`Expected maxFloats >= 1: received ${maxFloats}`);
    }
    this.maxFloats = maxFloats;
  }

  /**
   * A buffer of at least `size` floats; its contents are left over.
   *
   * @param slot Which buffer (buffers of different slots never alias).
   * @param size Floats needed.
   * @returns A view of exactly `size` floats.
   */
  get(slot: number, size: number): Float32Array {
    let buffer = this.#slots[slot];
    if (buffer === undefined || buffer.length < size) {
      buffer = new Float32Array(Math.max(size, 1));
      this.#slots[slot] = buffer;
    }
    return buffer.subarray(0, size);
  }

  /**
   * A vector of `size` ones (kept apart from the slots).
   *
   * @param size Its length.
   * @returns The ones.
   */
  ones(size: number): Float32Array {
    if (this.#ones.length < size) {
      this.#ones = new Float32Array(size).fill(1);
    }
    return this.#ones.subarray(0, size);
  }
}
