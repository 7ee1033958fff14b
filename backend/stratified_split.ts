/**
 * The one seeded, stratified hold-out rule that `data` (train/test split of a
 * labelled folder) and `probe` (train/validation split of features) share:
 * which rows of each class are held out.
 *
 * @module
 */
import type { Rng } from "./random.ts";

/** Options of {@linkcode stratifiedHoldout}. */
export interface StratifiedHoldoutOptions {
  /**
   * Fraction of each class held out, rounded per class (not validated here;
   * the callers validate it with their own flag's name).
   * @default {0.2}
   */
  fraction?: number;
  /**
   * How the classes draw their shuffles from the generator: `sequential`
   * shuffles the classes one after another from `rng` itself (advancing it),
   * in ascending label order; `fork` shuffles class c with
   * `rng.fork("split:<c>")` (leaving `rng` as it was), so one class's rows do
   * not move when another class changes.
   * @default {"sequential"}
   */
  streams?: "sequential" | "fork";
}

/** The defaults of {@linkcode StratifiedHoldoutOptions}. */
export const DEFAULT_STRATIFIED_HOLDOUT_OPTIONS: Readonly<
  Required<StratifiedHoldoutOptions>
> = Object.freeze({ fraction: 0.2, streams: "sequential" });

/**
 * Marks the rows held out of a stratified split: the rows of each class are
 * shuffled and the first round(fraction · n_c) of them are held out, clamped
 * so that a class with at least two rows keeps at least one row on each side
 * (when fraction > 0) and a class of one row is never held out. Every class
 * thus keeps its proportion.
 *
 * @example
 * ```ts
 * import { Rng } from "@scaling-vicreg/backend";
 * import { stratifiedHoldout } from "@scaling-vicreg/backend/stratified-split";
 * const heldOut = stratifiedHoldout([0, 0, 0, 0, 1, 1, 1, 1, 2], new Rng(0), {
 *   fraction: 0.25,
 * });
 * // one row of class 0 and one of class 1 are 1; the single row of class 2 is 0
 * ```
 *
 * @param labels The class of each row (any numbers; equal numbers are one class).
 * @param rng The seeded generator (advanced with `streams: "sequential"`).
 * @param options See {@linkcode StratifiedHoldoutOptions}.
 * @returns One byte per row: 1 held out, 0 kept.
 */
export function stratifiedHoldout(
  labels: ArrayLike<number>,
  rng: Rng,
  options: StratifiedHoldoutOptions = {},
): Uint8Array {
  const { fraction, streams } = {
    ...DEFAULT_STRATIFIED_HOLDOUT_OPTIONS,
    ...options,
  };
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const rows = byClass.get(labels[i]);
    if (rows) rows.push(i);
    else byClass.set(labels[i], [i]);
  }
  const heldOut = new Uint8Array(labels.length);
  for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
    const classRng = streams === "fork" ? rng.fork(`split:${label}`) : rng;
    const rows = classRng.shuffle(byClass.get(label)!);
    const n = rows.length;
    const lo = fraction > 0 && n >= 2 ? 1 : 0;
    const k = Math.min(Math.max(Math.round(fraction * n), lo), n - 1);
    for (let j = 0; j < k; j++) heldOut[rows[j]] = 1;
  }
  return heldOut;
}
