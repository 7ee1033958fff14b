import {
  assertEquals,
  assertRejects,
  assertTrue,
} from "@scaling-vicreg/backend/assert";
import {
  type CollectiveArray,
  type Communicator,
  SingleCommunicator,
} from "./communicator.ts";
import { allReduceInBuckets } from "./bucket_all_reduce.ts";

/** Two ranks holding the same values: the sum doubles every element. */
class TwinRanks extends SingleCommunicator {
  readonly calls: CollectiveArray[] = [];
  override allReduce<T extends CollectiveArray>(buf: T): Promise<T> {
    this.calls.push(buf);
    for (let i = 0; i < buf.length; i++) buf[i] *= 2;
    return Promise.resolve(buf);
  }
}

function ramp(n: number, offset: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => offset + i);
}

Deno.test("allReduceInBuckets() sums every array in place, packing small ones and sending large ones alone", async () => {
  // bucketBytes 40: a bucket holds 10 floats.
  const lengths = [3, 4, 0, 5, 12, 2, 8, 1];
  const arrays = lengths.map((n, k) => ramp(n, 100 * k));
  const want = arrays.map((a) => Array.from(a, (x) => 2 * x));
  const comm = new TwinRanks();
  const calls = await allReduceInBuckets(comm, arrays, { bucketBytes: 40 });
  assertEquals(arrays.map((a) => Array.from(a)), want);
  // Buckets: [3, 4, 0] (7; +5 would be 12), [5] alone, [12] alone (no copy),
  // [2, 8] (10), [1].
  assertEquals(comm.calls.map((c) => c.length), [7, 5, 12, 10, 1]);
  assertEquals(calls, 5);
  assertTrue(comm.calls[1] === arrays[3] && comm.calls[2] === arrays[4]);
});

Deno.test("allReduceInBuckets() with one rank leaves the arrays as they are; a bad bucket size throws", async () => {
  const comm: Communicator = new SingleCommunicator();
  const arrays = [ramp(5, 1), ramp(0, 0), ramp(3, -2)];
  const before = arrays.map((a) => Array.from(a));
  assertEquals(await allReduceInBuckets(comm, arrays), 1);
  assertEquals(arrays.map((a) => Array.from(a)), before);
  assertEquals(await allReduceInBuckets(comm, []), 0);
  await assertRejects(
    () => allReduceInBuckets(comm, arrays, { bucketBytes: 2 }),
    RangeError,
    "bucketBytes must be an integer ≥ 4: received 2",
  );
});
