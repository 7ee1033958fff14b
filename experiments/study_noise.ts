/**
 * What is signal in a study over several seeds: each row's mean and spread
 * over its seeds, and the rule that says two rows are within noise of each
 * other.
 *
 * The spread is the sample standard deviation (denominator n − 1; for n = 2
 * it is |a − b| / √2), and the rule is deliberately simple: two rows are
 * **within noise** when the difference of their means is at most the larger
 * of their two standard deviations. With fewer than two seeds a row has no
 * spread and nothing is judged.
 *
 * @module
 */

/** The mean and spread of one row's (or cell's) values over its seeds. */
export interface SeedSummary {
  /** Mean over the seeds. */
  mean: number;
  /** Sample standard deviation (n − 1), or `null` for a single seed. */
  sd: number | null;
  /** Smallest value. */
  min: number;
  /** Largest value. */
  max: number;
  /** Number of seeds. */
  n: number;
}

/**
 * The mean, sample standard deviation (n − 1), range and count of one row's
 * values over its seeds.
 *
 * @example
 * ```ts
 * import { summarizeSeeds } from "@scaling-vicreg/experiments/study-noise";
 * const s = summarizeSeeds([0.3, 0.32, 0.34]);
 * console.log(s.mean.toFixed(2), s.sd!.toFixed(2), s.n); // 0.32 0.02 3
 * ```
 *
 * @param values One value per seed (at least one, all finite).
 * @returns The summary; `sd` is `null` for one value.
 * @throws {RangeError} For no values or a non-finite one.
 */
export function summarizeSeeds(values: readonly number[]): SeedSummary {
  if (values.length === 0) {
    throw new RangeError("Expected at least one value per row: received none");
  }
  if (!values.every(Number.isFinite)) {
    throw new RangeError(
      `Expected finite values: received ${JSON.stringify(values)}`,
    );
  }
  const n = values.length;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const sd = n < 2
    ? null
    : Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1));
  return { mean, sd, min: Math.min(...values), max: Math.max(...values), n };
}

/**
 * Whether two rows are within noise of each other: the difference of their
 * means is at most the larger of their sample standard deviations. `false`
 * when either row has a single seed (no spread to judge by).
 *
 * @example
 * ```ts
 * import { summarizeSeeds, withinNoise } from "@scaling-vicreg/experiments/study-noise";
 * const a = summarizeSeeds([0.30, 0.34]); // mean 0.32, sd ≈ 0.028
 * const b = summarizeSeeds([0.31, 0.31]); // mean 0.31, sd 0
 * console.log(withinNoise(a, b)); // true: 0.01 ≤ 0.028
 * ```
 *
 * @param a One row.
 * @param b The other.
 * @returns Whether their difference is within the larger spread.
 */
export function withinNoise(a: SeedSummary, b: SeedSummary): boolean {
  if (a.sd === null || b.sd === null) return false;
  return Math.abs(a.mean - b.mean) <= Math.max(a.sd, b.sd);
}

/** How each row stands against the best row (see {@linkcode compareToBest}). */
export type NoiseMark = "best" | "within-noise" | "below" | "unjudged";

/**
 * Marks every row against the best one (the highest mean): `best`,
 * `within-noise` (by {@linkcode withinNoise}), `below`, or `unjudged` where a
 * row has no summary or the rows have fewer than two seeds.
 *
 * @example
 * ```ts
 * import { compareToBest, summarizeSeeds } from "@scaling-vicreg/experiments/study-noise";
 * compareToBest([
 *   summarizeSeeds([0.30, 0.32, 0.34]), // mean 0.32, sd 0.02
 *   summarizeSeeds([0.33, 0.33, 0.33]), // the best: 0.33
 *   summarizeSeeds([0.20, 0.21, 0.22]), // 0.12 below
 * ]); // ["within-noise", "best", "below"]
 * ```
 *
 * @param rows One summary per row, `null` where a row has none.
 * @returns One mark per row.
 */
export function compareToBest(
  rows: readonly (SeedSummary | null)[],
): NoiseMark[] {
  let best = -1;
  rows.forEach((r, i) => {
    if (r !== null && (best < 0 || r.mean > rows[best]!.mean)) best = i;
  });
  return rows.map((r, i) => {
    if (r === null || best < 0) return "unjudged";
    if (i === best) return r.sd === null ? "unjudged" : "best";
    if (r.sd === null || rows[best]!.sd === null) return "unjudged";
    return withinNoise(r, rows[best]!) ? "within-noise" : "below";
  });
}

/**
 * Every pair of rows within noise of each other (by {@linkcode withinNoise}),
 * as index pairs `[i, j]` with `i < j`.
 *
 * @example
 * ```ts
 * import { noisePairs, summarizeSeeds } from "@scaling-vicreg/experiments/study-noise";
 * noisePairs([
 *   summarizeSeeds([0.30, 0.34]),
 *   summarizeSeeds([0.31, 0.33]),
 *   summarizeSeeds([0.50, 0.52]),
 * ]); // [[0, 1]]
 * ```
 *
 * @param rows One summary per row, `null` where a row has none.
 * @returns The pairs within noise.
 */
export function noisePairs(
  rows: readonly (SeedSummary | null)[],
): [number, number][] {
  const pairs: [number, number][] = [];
  for (let i = 0; i < rows.length; i++) {
    for (let j = i + 1; j < rows.length; j++) {
      const a = rows[i], b = rows[j];
      if (a !== null && b !== null && withinNoise(a, b)) pairs.push([i, j]);
    }
  }
  return pairs;
}
