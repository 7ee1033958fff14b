import { assertEquals } from "@scaling-vicreg/backend/testing";
import {
  type Communicator,
  SingleCommunicator,
} from "@scaling-vicreg/distributed/communicator";
import {
  agreeOnStop,
  type StopKind,
  stopKindOf,
  StopRequest,
} from "./stop_request.ts";

/**
 * Rank 0 of two whose peer votes `peer`: its all-reduce adds the peer's
 * vote, as MPI's sum over both ranks would.
 */
function withPeer(peer: StopKind | undefined): Communicator {
  const single = new SingleCommunicator();
  return Object.assign(Object.create(single), {
    size: 2,
    allReduce<T extends Float32Array | Float64Array>(buf: T): Promise<T> {
      buf[0] += peer === "interrupt" ? 1 : 0;
      buf[1] += peer === "preempt" ? 1 : 0;
      return Promise.resolve(buf);
    },
  });
}

Deno.test("stopKindOf() reads a StopRequest's kind; a plain abort is an interrupt; no abort is no stop", () => {
  const preempt = new AbortController();
  preempt.abort(new StopRequest("preempt", "SIGUSR1"));
  assertEquals(stopKindOf(preempt.signal), "preempt");
  const plain = new AbortController();
  assertEquals(stopKindOf(plain.signal), undefined);
  plain.abort();
  assertEquals(stopKindOf(plain.signal), "interrupt");
  assertEquals(stopKindOf(undefined), undefined);
  assertEquals(
    new StopRequest("preempt", "SIGTERM").message,
    "preempted (SIGTERM)",
  );
});

Deno.test("agreeOnStop() stops every rank when one asks, and preempt wins over interrupt", async () => {
  const cases: [StopKind | undefined, StopKind | undefined, unknown][] = [
    [undefined, undefined, undefined],
    [undefined, "interrupt", "interrupt"],
    ["interrupt", undefined, "interrupt"],
    [undefined, "preempt", "preempt"],
    ["interrupt", "preempt", "preempt"],
    ["preempt", "interrupt", "preempt"],
  ];
  for (const [mine, peer, agreed] of cases) {
    assertEquals(
      await agreeOnStop(withPeer(peer), mine),
      agreed,
      `${mine} + ${peer}`,
    );
  }
  assertEquals(
    await agreeOnStop(new SingleCommunicator(), "preempt"),
    "preempt",
  );
  assertEquals(
    await agreeOnStop(new SingleCommunicator(), undefined),
    undefined,
  );
});
