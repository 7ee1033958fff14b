/**
 * The cache of oneDNN primitives: each is built once per shape, and a shape
 * oneDNN refused is remembered and not asked for again.
 *
 * @module
 */

/** Primitives (or anything built from them) by a key naming their shape. */
export class PrimitiveCache<T> {
  /** `null` once building threw (not tried again). */
  #entries = new Map<string, T | null>();

  /**
   * The value for `key`, built on first use.
   *
   * @param key The shape's key.
   * @param build Builds it; throws when oneDNN has no primitive for it.
   * @returns The value, or `null` when building it threw (now or before).
   */
  get(key: string, build: () => T): T | null {
    let value = this.#entries.get(key);
    if (value === undefined) {
      try {
        value = build();
      } catch {
        value = null;
      }
      this.#entries.set(key, value);
    }
    return value;
  }
}
