import { assertEquals } from "@scaling-vicreg/backend/testing";
import {
  DUPLICATE_SIGNAL_MS,
  interruptHandler,
  InterruptPolicy,
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
    stop: () => log.push("stop"),
    print: (line) => log.push(line.trim()),
    exit: (code) => log.push(`exit ${code}`),
    now: () => clock,
  });
  handler();
  clock = 2;
  handler(); // the wrapper's copy of the same Ctrl-C
  assertEquals(log, [
    "pretrain: stopping after this step and writing a checkpoint… (Ctrl-C again to stop at once, without one)",
    "stop",
  ]);
  clock = 5000;
  handler();
  assertEquals(log.slice(2), [
    "pretrain: second Ctrl-C: stopped at once without writing a checkpoint; --resume continues from the last one in runs/x",
    "exit 130",
  ]);
});
