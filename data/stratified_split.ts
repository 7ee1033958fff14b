/**
 * The seeded, stratified train/test split made when a data set has no test
 * split of its own.
 *
 * @module
 */
import { Rng } from "@scaling-vicreg/backend/random";
import { stratifiedHoldout } from "@scaling-vicreg/backend/stratified-split";
import type { DatasetEntry } from "./dataset_options.ts";

/**
 * A seeded, stratified train/test split of labelled entries: each class's
 * entries are shuffled by `Rng(seed).fork("split:<label>")` and the first
 * `round(testFraction · count)` of them (at least 1 when the class has ≥ 2)
 * go to test. Both parts keep the input order.
 *
 * @example
 * ```ts
 * import { stratifiedSplit } from "@scaling-vicreg/data/stratified-split";
 * const entries = Array.from({ length: 10 }, (_, i) => ({ path: `${i}.png`, label: i % 2 }));
 * const { train, test } = stratifiedSplit(entries, 0.2, 0);
 * console.log(train.length, test.length); // 8 2
 * ```
 *
 * @param entries Labelled entries.
 * @param testFraction Fraction in (0, 1).
 * @param seed The seed.
 * @returns The two parts.
 */
export function stratifiedSplit(
  entries: readonly DatasetEntry[],
  testFraction: number,
  seed: number,
): { train: DatasetEntry[]; test: DatasetEntry[] } {
  const isTest = stratifiedHoldout(
    entries.map((e) => e.label ?? -1),
    new Rng(seed),
    { fraction: testFraction, streams: "fork" },
  );
  return {
    train: entries.filter((_, i) => !isTest[i]),
    test: entries.filter((_, i) => isTest[i] === 1),
  };
}
