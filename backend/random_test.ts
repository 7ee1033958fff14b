import { Rng } from "./random.ts";
import {
  assertClose,
  assertEquals,
  assertThrows,
  assertTrue,
} from "./testing.ts";

Deno.test("Rng gives the same stream for the same seed", () => {
  const a = new Rng(7);
  const b = new Rng(7);
  const xs = Array.from({ length: 100 }, () => a.nextUint32());
  const ys = Array.from({ length: 100 }, () => b.nextUint32());
  assertEquals(xs, ys);
  assertTrue(new Rng(8).nextUint32() !== new Rng(7).nextUint32());
});

Deno.test("Rng.nextUint32() matches xoshiro128** reference output", () => {
  // Reference: xoshiro128** from state [1, 2, 3, 4] (Blackman & Vigna's C
  // code): first outputs 11520, 0, 5927040, 70819200.
  const rng = new Rng([1, 2, 3, 4]);
  assertEquals(
    [rng.nextUint32(), rng.nextUint32(), rng.nextUint32(), rng.nextUint32()],
    [11520, 0, 5927040, 70819200],
  );
});

Deno.test("Rng.getState()/setState() resume the stream exactly", () => {
  const a = new Rng(3);
  for (let i = 0; i < 10; i++) a.normal();
  const saved = a.getState();
  const expected = [a.uniform(), a.normal(), a.int(10)];
  const b = new Rng(saved);
  assertEquals([b.uniform(), b.normal(), b.int(10)], expected);
  assertThrows(() => b.setState([0, 0, 0, 0]), RangeError, "not all zero");
});

Deno.test("Rng draws have the right moments", () => {
  const rng = new Rng(11);
  const n = 20000;
  let s = 0, s2 = 0, u = 0, bern = 0, beta = 0;
  for (let i = 0; i < n; i++) {
    const z = rng.normal();
    s += z;
    s2 += z * z;
    u += rng.uniform(2, 4);
    bern += rng.bernoulli(0.3) ? 1 : 0;
    beta += rng.beta(2, 2);
  }
  assertClose(s / n, 0, { atol: 0.03 });
  assertClose(s2 / n, 1, { atol: 0.03 });
  assertClose(u / n, 3, { atol: 0.02 });
  assertClose(bern / n, 0.3, { atol: 0.015 });
  assertClose(beta / n, 0.5, { atol: 0.01 });
});

Deno.test("Rng.permutation() is a permutation and fork() is independent", () => {
  const rng = new Rng(5);
  const p = rng.permutation(50);
  assertEquals(
    [...p].sort((x, y) => x - y),
    Array.from({ length: 50 }, (_, i) => i),
  );
  const before = rng.getState();
  const f1 = rng.fork("augment");
  const f2 = rng.fork("init");
  assertEquals(rng.getState(), before);
  assertTrue(f1.nextUint32() !== f2.nextUint32());
  assertEquals(
    rng.fork("augment").nextUint32(),
    new Rng(before).fork("augment").nextUint32(),
  );
});
