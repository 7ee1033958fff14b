// A scheduler's preemption warning (SIGTERM, or SIGUSR1 as `srun
// --signal=USR1@120` sends it) to `vicreg pretrain`, on one process and on 2
// ranks: the run finishes its step, writes one checkpoint, exits with 75,
// and `--resume` ends byte-identical to the run left alone.
import {
  assertEquals,
  assertTrue,
  ignoreUnless,
} from "@scaling-vicreg/backend/testing";
import { mpiMissing, RankPids } from "@scaling-vicreg/distributed";
import {
  assertSameRun,
  preemptRun,
  runPretrainCli,
  runRecord,
} from "./_run_testing.ts";

const missing = mpiMissing();
const ignoreMpi = ignoreUnless(missing === undefined, "mpi", missing);

/**
 * Preempts a run with `send` once it has logged a step (exit 75, a
 * checkpoint of its step), then resumes it to the end.
 */
async function preemptAndResume(
  dir: string,
  extra: Record<string, string | number | boolean>,
  send: (child: Deno.ChildProcess) => void,
  signal: string,
): Promise<void> {
  const { step, stderr } = await preemptRun(dir, extra, send);
  assertTrue(stderr.includes(`${signal}: stopping after this step`), stderr);
  assertTrue(step >= 1 && step < 8, `stopped after ${step} of 8 steps`);
  assertTrue(
    stderr.includes("requeue the same command with --resume"),
    stderr,
  );
  const resumed = await runPretrainCli(dir, { ...extra, resume: true });
  assertEquals(resumed.code, 0, resumed.stderr);
  assertTrue(resumed.stderr.includes(`at step ${step}`), resumed.stderr);
}

Deno.test("vicreg pretrain on SIGUSR1 or SIGTERM checkpoints at the step, exits 75, and --resume ends identical to the run left alone", async () => {
  const root = await Deno.makeTempDir();
  try {
    // The run left alone and the two preempted ones side by side.
    const [straight] = await Promise.all([
      runPretrainCli(`${root}/straight`),
      ...(["SIGUSR1", "SIGTERM"] as const).map((signal) =>
        preemptAndResume(
          `${root}/${signal}`,
          {},
          (child) => child.kill(signal),
          signal,
        )
      ),
    ]);
    assertEquals(straight.code, 0, straight.stderr);
    const expected = await runRecord(`${root}/straight`);
    for (const signal of ["SIGUSR1", "SIGTERM"]) {
      assertSameRun(await runRecord(`${root}/${signal}`), expected);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name:
    "vicreg pretrain --ranks 2: SIGUSR1 to the command, or SIGTERM to one rank, stops both ranks at one step with a checkpoint and exit 75; --resume --ranks 2 ends identical",
  ignore: ignoreMpi,
  async fn() {
    const root = await Deno.makeTempDir();
    const ranks = { ranks: 2 };
    try {
      const [straight] = await Promise.all([
        runPretrainCli(`${root}/straight`, ranks),
        // SIGUSR1 to `--ranks 2`'s own process: forwarded through mpiexec.
        preemptAndResume(
          `${root}/usr1`,
          ranks,
          (child) => child.kill("SIGUSR1"),
          "SIGUSR1",
        ),
        // SIGTERM to rank 1 alone: rank 0 learns of it from the stop vote.
        (async () => {
          const watch: { pids?: RankPids } = {};
          try {
            await preemptAndResume(
              `${root}/term`,
              ranks,
              (child) => {
                watch.pids = new RankPids(child.pid, 2, { intervalMs: 20 });
                const pid = watch.pids.pidOf(1);
                assertTrue(pid !== undefined, "rank 1 not found");
                Deno.kill(pid, "SIGTERM");
              },
              "SIGTERM",
            );
          } finally {
            watch.pids?.stop();
          }
        })(),
      ]);
      assertEquals(straight.code, 0, straight.stderr);
      const expected = await runRecord(`${root}/straight`);
      assertSameRun(await runRecord(`${root}/usr1`), expected);
      assertSameRun(await runRecord(`${root}/term`), expected);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
