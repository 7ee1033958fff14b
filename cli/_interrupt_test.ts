import { assertEquals } from "@scaling-vicreg/backend/testing";
import {
  DUPLICATE_SIGNAL_MS,
  interruptHandler,
  InterruptPolicy,
  PREEMPTED_EXIT_CODE,
} from "./_interrupt.ts";

Deno.test("InterruptPolicy.next() stops on the first signal, ignores its forwarded copy and exits on a later one", () => {
  const p = new InterruptPolicy();
  assertEquals(p.next(1000), "stop");
  assertEquals(p.next(1001), "ignore");
  assertEquals(p.next(1000 + DUPLICATE_SIGNAL_MS - 1), "ignore");
  assertEquals(p.next(1000 + DUPLICATE_SIGNAL_MS), "exit");
});

Deno.test("interruptHandler() asks for a checkpoint once, then exits with 130 saying so", () => {
  let clock = 0;
  const log: string[] = [];
  const handler = interruptHandler("pretrain", "runs/x", {
    stop: (request) => log.push(`stop ${request.kind}`),
    print: (line) => log.push(line.trim()),
    exit: (code) => log.push(`exit ${code}`),
    now: () => clock,
  });
  handler("SIGINT");
  clock = 2;
  handler("SIGINT"); // the wrapper's copy of the same Ctrl-C
  assertEquals(log, [
    "pretrain: stopping after this step and writing a checkpoint… (Ctrl-C again to stop at once, without one)",
    "stop interrupt",
  ]);
  clock = 5000;
  handler("SIGINT");
  assertEquals(log.slice(2), [
    "pretrain: second Ctrl-C: stopped at once without writing a checkpoint; --resume continues from the last one in runs/x",
    "exit 130",
  ]);
});

Deno.test("interruptHandler() stops a run preempted by SIGUSR1 or SIGTERM after the step, then exits at once with 75 on the next signal", () => {
  assertEquals(PREEMPTED_EXIT_CODE, 75);
  for (
    const [first, second] of [["SIGUSR1", "SIGTERM"], ["SIGTERM", "SIGINT"]]
  ) {
    let clock = 0;
    const log: string[] = [];
    const handler = interruptHandler("pretrain", "runs/x", {
      stop: (request) => log.push(`stop ${request.kind} ${request.signal}`),
      print: (line) => log.push(line.trim()),
      exit: (code) => log.push(`exit ${code}`),
      now: () => clock,
    });
    handler(first);
    assertEquals(log, [
      `pretrain: ${first}: stopping after this step and writing a checkpoint, then exiting with 75 (preempted: requeue with --resume)`,
      `stop preempt ${first}`,
    ]);
    clock = 5000;
    handler(second);
    assertEquals(log.slice(2), [
      `pretrain: ${
        second === "SIGINT" ? "second Ctrl-C" : `${second} again`
      }: stopped at once without writing a checkpoint; --resume continues from the last one in runs/x (exit 75: preempted)`,
      "exit 75",
    ]);
  }
});

Deno.test("interruptHandler() exits with 75 when a scheduler's SIGTERM follows a Ctrl-C", () => {
  let clock = 0;
  const log: string[] = [];
  const handler = interruptHandler("pretrain", "runs/x", {
    stop: (request) => log.push(`stop ${request.kind}`),
    print: () => {},
    exit: (code) => log.push(`exit ${code}`),
    now: () => clock,
  });
  handler("SIGINT");
  clock = 1000;
  handler("SIGTERM");
  assertEquals(log, ["stop interrupt", "exit 75"]);
});
