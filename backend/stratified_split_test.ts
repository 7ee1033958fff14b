import { Rng } from "./random.ts";
import { assertEquals, assertTrue } from "./testing.ts";
import {
  DEFAULT_STRATIFIED_HOLDOUT_OPTIONS,
  stratifiedHoldout,
} from "./stratified_split.ts";

// 10 rows of class 0, 5 of class 1, 2 of class 7, 1 of class -1, interleaved.
const LABELS = [
  0,
  1,
  0,
  7,
  0,
  1,
  0,
  0,
  -1,
  1,
  0,
  0,
  7,
  1,
  0,
  0,
  1,
  0,
];

function heldPerClass(
  labels: number[],
  heldOut: Uint8Array,
): Map<number, number> {
  const m = new Map<number, number>();
  labels.forEach((l, i) => m.set(l, (m.get(l) ?? 0) + heldOut[i]));
  return m;
}

Deno.test("stratifiedHoldout() holds out round(fraction · n) of each class, at least one of a class of two, none of a class of one", () => {
  for (const streams of ["sequential", "fork"] as const) {
    const heldOut = stratifiedHoldout(LABELS, new Rng(3), {
      fraction: 0.2,
      streams,
    });
    assertEquals(heldOut.length, LABELS.length);
    assertTrue(heldOut.every((h) => h === 0 || h === 1));
    // 0.2·10 = 2, 0.2·5 = 1, 0.2·2 = 0.4 → clamped to 1, a class of 1 → 0.
    assertEquals(
      Object.fromEntries(heldPerClass(LABELS, heldOut)),
      { "0": 2, "1": 1, "7": 1, "-1": 0 },
    );
  }
});

Deno.test("stratifiedHoldout() keeps one row of each class of ≥ 2 rows, and holds none out at fraction 0", () => {
  const all = stratifiedHoldout(LABELS, new Rng(0), { fraction: 0.99 });
  assertEquals(
    Object.fromEntries(heldPerClass(LABELS, all)),
    { "0": 9, "1": 4, "7": 1, "-1": 0 },
  );
  const none = stratifiedHoldout(LABELS, new Rng(0), { fraction: 0 });
  assertEquals(none.reduce((a, b) => a + b, 0), 0);
});

Deno.test("stratifiedHoldout() draws by label: sequential advances rng, fork leaves it and isolates classes", () => {
  // Sequential: the same as shuffling each class's rows, ascending labels,
  // from one generator, and taking the first k.
  const rng = new Rng(11);
  const heldOut = stratifiedHoldout(LABELS, rng, { fraction: 0.5 });
  const ref = new Rng(11);
  const expected = new Uint8Array(LABELS.length);
  for (const label of [-1, 0, 1, 7]) {
    const rows = ref.shuffle(
      LABELS.flatMap((l, i) => l === label ? [i] : []),
    );
    const k = Math.min(
      Math.max(Math.round(0.5 * rows.length), 1),
      rows.length - 1,
    );
    rows.slice(0, k).forEach((r) => expected[r] = 1);
  }
  assertEquals([...heldOut], [...expected]);
  assertEquals(rng.nextUint32(), ref.nextUint32());

  // Fork: the parent is not advanced, and adding a class does not move the
  // held-out rows of the others.
  const parent = new Rng(5);
  const before = new Rng(5).nextUint32();
  const a = stratifiedHoldout(LABELS, parent, {
    fraction: 0.5,
    streams: "fork",
  });
  assertEquals(parent.nextUint32(), before);
  const b = stratifiedHoldout([...LABELS, 9, 9, 9], new Rng(5), {
    fraction: 0.5,
    streams: "fork",
  });
  assertEquals([...b.subarray(0, LABELS.length)], [...a]);
});

Deno.test("stratifiedHoldout() defaults to fraction 0.2 from one sequential stream", () => {
  assertEquals({ ...DEFAULT_STRATIFIED_HOLDOUT_OPTIONS }, {
    fraction: 0.2,
    streams: "sequential",
  });
  assertEquals(
    [...stratifiedHoldout(LABELS, new Rng(1))],
    [...stratifiedHoldout(LABELS, new Rng(1), {
      fraction: 0.2,
      streams: "sequential",
    })],
  );
});
