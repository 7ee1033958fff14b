import {
  assertEquals,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import {
  compareToBest,
  noisePairs,
  type SeedSummary,
  summarizeSeeds,
  withinNoise,
} from "./study_noise.ts";

function close(a: number, b: number, tol = 1e-12): void {
  assertTrue(Math.abs(a - b) <= tol, `${a} vs ${b}`);
}

Deno.test("summarizeSeeds() gives the mean, sample standard deviation and range (hand-computed)", () => {
  // 1, 2, 3, 6: mean 3, squared deviations 4 + 1 + 0 + 9 = 14, / (n − 1) = 14/3.
  const s = summarizeSeeds([1, 2, 3, 6]);
  assertEquals([s.mean, s.min, s.max, s.n], [3, 1, 6, 4]);
  close(s.sd!, Math.sqrt(14 / 3));
  // Two seeds: sd = |a − b| / √2.
  close(summarizeSeeds([0.3, 0.5]).sd!, 0.2 / Math.SQRT2);
  // One seed: no spread.
  assertEquals(summarizeSeeds([0.4]), {
    mean: 0.4,
    sd: null,
    min: 0.4,
    max: 0.4,
    n: 1,
  });
  assertThrows(() => summarizeSeeds([]), RangeError, "at least one value");
  assertThrows(() => summarizeSeeds([0.1, NaN]), RangeError, "finite");
});

Deno.test("withinNoise() compares the difference of means with the larger spread", () => {
  // a: 1, 2, 3 → mean 2, sd 1; b: 3, 3, 3 → mean 3, sd 0: difference 1 ≤ 1.
  const a = summarizeSeeds([1, 2, 3]);
  const b = summarizeSeeds([3, 3, 3]);
  assertTrue(withinNoise(a, b) && withinNoise(b, a));
  // c: 4, 4, 4 → mean 4: difference 2 > max(1, 0): they differ.
  const c = summarizeSeeds([4, 4, 4]);
  assertTrue(!withinNoise(a, c) && !withinNoise(c, a));
  // b and c: difference 1, both spreads 0: they differ.
  assertTrue(!withinNoise(b, c));
  // A single seed has no spread: never judged within noise.
  assertTrue(!withinNoise(summarizeSeeds([2]), summarizeSeeds([2])));
});

Deno.test("compareToBest() marks the best row, the rows within its noise and the rows below", () => {
  // Top-1 over three seeds, hand-computed:
  // global-only 0.30, 0.32, 0.34 → mean 0.32, sd 0.02
  // full        0.29, 0.33, 0.37 → mean 0.33, sd 0.04 (the best)
  // local-only  0.20, 0.21, 0.22 → mean 0.21, sd 0.01: 0.12 > 0.04 below
  // global-local 0.275, 0.285, 0.295 → mean 0.285, sd 0.01: 0.045 > 0.04 below
  const rows: (SeedSummary | null)[] = [
    summarizeSeeds([0.30, 0.32, 0.34]),
    summarizeSeeds([0.29, 0.33, 0.37]),
    summarizeSeeds([0.20, 0.21, 0.22]),
    summarizeSeeds([0.275, 0.285, 0.295]),
    null,
  ];
  assertEquals(compareToBest(rows), [
    "within-noise",
    "best",
    "below",
    "below",
    "unjudged",
  ]);
  // The same means with no spread (one seed each): nothing is judged.
  assertEquals(
    compareToBest([summarizeSeeds([0.32]), summarizeSeeds([0.33])]),
    ["unjudged", "unjudged"],
  );
  assertEquals(compareToBest([]), []);
});

Deno.test("noisePairs() lists every pair within noise", () => {
  // 0: mean 2 sd 1; 1: mean 3 sd 0; 2: mean 4 sd 0; 3: mean 3.5 sd √0.5 ≈ 0.707
  const rows = [
    summarizeSeeds([1, 2, 3]),
    summarizeSeeds([3, 3, 3]),
    summarizeSeeds([4, 4, 4]),
    summarizeSeeds([3, 4]),
    null,
  ];
  // 0–1: 1 ≤ 1; 0–2: 2 > 1; 0–3: 1.5 > 1; 1–2: 1 > 0; 1–3: 0.5 ≤ 0.707;
  // 2–3: 0.5 ≤ 0.707.
  assertEquals(noisePairs(rows), [[0, 1], [1, 3], [2, 3]]);
});
