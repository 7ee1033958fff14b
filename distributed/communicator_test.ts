import {
  assertEquals,
  assertRejects,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/assert";
import { CommunicatorError, SingleCommunicator } from "./communicator.ts";

Deno.test("SingleCommunicator: allReduce and broadcast leave the buffer as it is, in place", async () => {
  const comm = new SingleCommunicator();
  assertEquals([comm.kind, comm.rank, comm.size], ["single", 0, 1]);
  const x = new Float32Array([1.5, -2, 3]);
  assertTrue((await comm.allReduce(x)) === x);
  assertEquals(Array.from(x), [1.5, -2, 3]);
  const d = new Float64Array([0.1]);
  assertTrue((await comm.broadcast(d, 0)) === d);
  assertEquals(d[0], 0.1);
  const empty = new Float32Array(0);
  assertEquals((await comm.allReduce(empty)).length, 0);
  await comm.barrier();
  await comm.close();
});

Deno.test("SingleCommunicator: allGather returns a new copy of the same type", async () => {
  const comm = new SingleCommunicator();
  const x = new Float64Array([4, 5, 6]);
  const all = await comm.allGather(x);
  assertTrue(all instanceof Float64Array && all !== x);
  assertEquals(Array.from(all), [4, 5, 6]);
  all[0] = 0;
  assertEquals(x[0], 4);
  assertEquals((await comm.allGather(new Float32Array(0))).length, 0);
  await comm.close();
});

Deno.test("SingleCommunicator: wrong types, ops and roots throw; calls after close() reject", async () => {
  const comm = new SingleCommunicator();
  assertThrows(
    () => comm.allReduce([1, 2] as unknown as Float32Array),
    TypeError,
    "expected a Float32Array or Float64Array: received Array",
  );
  assertThrows(
    () => comm.allReduce(new Float32Array(1), "max" as "sum"),
    RangeError,
    'op must be "sum"',
  );
  assertThrows(
    () => comm.broadcast(new Uint8Array(1), 1),
    RangeError,
    "root must be an integer rank in [0, 1): received 1",
  );
  await comm.close();
  await assertRejects(
    () => comm.allReduce(new Float32Array(1)),
    CommunicatorError,
    "allReduce: the communicator is closed",
  );
  await assertRejects(() => comm.barrier(), CommunicatorError, "closed");
});
