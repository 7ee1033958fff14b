/**
 * A small seeded pseudo-random generator (xoshiro128**, Blackman & Vigna)
 * that every stochastic part of the project takes as a parameter, so the same
 * seed gives bit-identical augmentations, initialisations and data orders.
 *
 * @module
 */

/** The serialisable state of an {@linkcode Rng}: four uint32 words. */
export type RngState = [number, number, number, number];

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function hashString(text: string): number {
  // FNV-1a, 32 bit.
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h;
}

const TWO_POW_32 = 4294967296;

/**
 * A seeded generator with the draws this project needs.
 *
 * @example
 * ```ts
 * import { Rng } from "@scaling-vicreg/backend/random";
 * const a = new Rng(42), b = new Rng(42);
 * console.log(a.uniform() === b.uniform()); // true
 * ```
 */
export class Rng {
  #s: Uint32Array;

  /**
   * Seeds a generator; the four state words come from splitmix32(seed).
   *
   * @param seed Any number (its low 32 bits are used) or a saved state.
   */
  constructor(seed: number | RngState = 0) {
    this.#s = new Uint32Array(4);
    if (Array.isArray(seed)) {
      this.setState(seed);
    } else {
      const next = splitmix32(seed);
      for (let i = 0; i < 4; i++) this.#s[i] = next();
    }
  }

  /** The current state, to save in a checkpoint. */
  getState(): RngState {
    const s = this.#s;
    return [s[0], s[1], s[2], s[3]];
  }

  /**
   * Restores a state from {@linkcode Rng.getState}.
   *
   * @param state Four uint32 words, not all zero.
   */
  setState(state: RngState): void {
    if (
      state.length !== 4 || state.some((w) => !Number.isInteger(w)) ||
      state.every((w) => w === 0)
    ) {
      throw new RangeError(
        `Expected an Rng state of four uint32 words, not all zero: received ${
          JSON.stringify(state)
        }`,
      );
    }
    for (let i = 0; i < 4; i++) this.#s[i] = state[i] >>> 0;
  }

  /**
   * An independent generator derived from this one's state and a label, without
   * advancing this one. Use one fork per concern (init, augment, loader).
   *
   * @param label Names the stream.
   * @returns A new generator.
   */
  fork(label: string): Rng {
    const s = this.#s;
    const mix = splitmix32(
      (s[0] ^ Math.imul(s[1], 31) ^ Math.imul(s[2], 961) ^ s[3] ^
        hashString(label)) >>> 0,
    );
    return new Rng([mix(), mix(), mix(), mix() | 1]);
  }

  /** The next uint32. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /**
   * A float uniform in [lo, hi), with 32 random bits.
   *
   * @param lo Lower bound. @default {0}
   * @param hi Upper bound. @default {1}
   */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * (this.nextUint32() / TWO_POW_32);
  }

  /**
   * exp(U(log lo, log hi)): log-uniform in [lo, hi).
   *
   * @param lo Lower bound, > 0.
   * @param hi Upper bound, > lo.
   */
  logUniform(lo: number, hi: number): number {
    return Math.exp(this.uniform(Math.log(lo), Math.log(hi)));
  }

  /**
   * An integer uniform in [0, n), without modulo bias.
   *
   * @param n Exclusive upper bound, 1 ≤ n ≤ 2^32.
   */
  int(n: number): number {
    if (!(n >= 1 && n <= TWO_POW_32) || !Number.isInteger(n)) {
      throw new RangeError(`Expected an integer n in [1, 2^32]: received ${n}`);
    }
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    let u: number;
    do u = this.nextUint32(); while (u >= limit);
    return u % n;
  }

  /**
   * True with probability p.
   *
   * @param p Probability in [0, 1].
   */
  bernoulli(p: number): boolean {
    return this.uniform() < p;
  }

  /**
   * A normal draw (Box–Muller; two uniforms per draw, no cached spare, so the
   * state alone determines the stream).
   *
   * @param mean Mean. @default {0}
   * @param std Standard deviation. @default {1}
   */
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.uniform(); // (0, 1]
    const u2 = this.uniform();
    return mean +
      std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /**
   * Fills an array with normal draws.
   *
   * @param out The array to fill.
   * @param mean Mean. @default {0}
   * @param std Standard deviation. @default {1}
   * @returns `out`.
   */
  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal(mean, std);
    return out;
  }

  /**
   * Fills an array with uniform draws in [lo, hi).
   *
   * @param out The array to fill.
   * @param lo Lower bound. @default {0}
   * @param hi Upper bound. @default {1}
   * @returns `out`.
   */
  fillUniform(out: Float32Array, lo = 0, hi = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.uniform(lo, hi);
    return out;
  }

  /**
   * A Gamma(shape, 1) draw (Marsaglia & Tsang 2000; shape < 1 by boosting).
   *
   * @param shape Shape k > 0.
   */
  gamma(shape: number): number {
    if (!(shape > 0)) {
      throw new RangeError(`Expected a gamma shape > 0: received ${shape}`);
    }
    if (shape < 1) {
      return this.gamma(shape + 1) * Math.pow(1 - this.uniform(), 1 / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const x = this.normal();
      const v = Math.pow(1 + c * x, 3);
      if (v <= 0) continue;
      const u = 1 - this.uniform();
      if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
    }
  }

  /**
   * A Beta(a, b) draw, as the ratio of two gamma draws.
   *
   * @param a First shape > 0.
   * @param b Second shape > 0.
   */
  beta(a: number, b: number): number {
    const x = this.gamma(a);
    const y = this.gamma(b);
    return x / (x + y);
  }

  /**
   * Shuffles an array in place (Fisher–Yates).
   *
   * @param items The array.
   * @returns `items`.
   */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  /**
   * A random permutation of 0 … n−1.
   *
   * @param n Its length.
   */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
