import { assertEquals } from "@scaling-vicreg/backend/assert";
import { describeRankFailure, HydraReport, RankPids } from "./rank_failure.ts";
import { runRanks } from "./launch.ts";
import { catchesSignal } from "./_test_signals.ts";

// MPICH 4.0.2's mpiexec (hydra) stdout when rank 1 (pid 3868) of two was
// SIGKILLed in an all-reduce, as printed here, between two lines of the job.
const KILLED = [
  "rank 0: step 3",
  "",
  "===================================================================================",
  "=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES",
  "=   PID 3868 RUNNING AT vm",
  "=   EXIT CODE: 9",
  "=   CLEANING UP REMAINING PROCESSES",
  "=   YOU CAN IGNORE THE BELOW CLEANUP MESSAGES",
  "===================================================================================",
  "YOUR APPLICATION TERMINATED WITH THE EXIT STRING: Killed (signal 9)",
  "This typically refers to a problem with your application.",
  "Please see the FAQ page for debugging suggestions",
  "after the job",
];

const isLinux = Deno.build.os === "linux";

Deno.test("HydraReport.take() keeps back hydra's banner, passes the job's lines on, and reads the pid, host and signal", () => {
  const report = new HydraReport();
  const passed = KILLED.flatMap((line) => report.take(line));
  assertEquals(passed, ["rank 0: step 3", "", "after the job"]);
  assertEquals(report.failure, {
    pid: 3868,
    host: "vm",
    exitCode: 9,
    signal: "SIGKILL",
  });
});

Deno.test("HydraReport reads a banner that names the rank, and a job line of '=' characters is not a failure", () => {
  const report = new HydraReport();
  const lines = KILLED.map((l) =>
    l.replace("PID 3868 RUNNING", "RANK 2 PID 77 RUNNING")
      .replace("Killed (signal 9)", "Segmentation fault (signal 11)")
  );
  lines.forEach((l) => report.take(l));
  assertEquals(report.failure?.rank, 2);
  assertEquals(report.failure?.signal, "SIGSEGV");
  // A block of the job's own is held back, then passed on whole.
  const plain = new HydraReport();
  const table = ["=".repeat(30), "=   a table of the job", "=".repeat(30)];
  assertEquals(table.flatMap((l) => plain.take(l)), table);
  assertEquals(plain.take("=".repeat(30)), []);
  assertEquals(plain.take("not a banner"), ["=".repeat(30), "not a banner"]);
  assertEquals(plain.take("=".repeat(30)), []);
  assertEquals(plain.end(), ["=".repeat(30)]);
  assertEquals(plain.failure, undefined);
  // Without a failure, hydra's closing lines are the job's own.
  const closing = "This typically refers to a problem with your application.";
  assertEquals(plain.take(closing), [closing]);
});

Deno.test("describeRankFailure() names the rank, pid, host and signal or exit code", () => {
  assertEquals(
    describeRankFailure({
      rank: 1,
      pid: 5,
      host: "n1",
      exitCode: 9,
      signal: "SIGKILL",
    }),
    "rank 1 (pid 5 on n1) was killed by SIGKILL",
  );
  assertEquals(
    describeRankFailure({ pid: 5, host: "n1", exitCode: 3 }),
    "a rank (pid 5 on n1) exited with code 3",
  );
});

/** A stand-in launcher: an executable shell script in a temp dir. */
async function fakeLauncher(body: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/mpiexec`;
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`);
  await Deno.chmod(path, 0o755);
  return path;
}

Deno.test({
  name: "RankPids maps the pids of a launcher's descendants to their PMI_RANK",
  ignore: !isLinux,
  async fn() {
    const child = new Deno.Command("sh", {
      args: ["-c", "PMI_RANK=0 sleep 30 & PMI_RANK=1 sleep 30 & wait"],
    }).spawn();
    const pids = new RankPids(child.pid, 2, { intervalMs: 50 });
    let seen: number[] = [];
    try {
      for (let i = 0; i < 100 && seen.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const ps = await new Deno.Command("ps", {
          args: ["-o", "pid=", "--ppid", String(child.pid)],
          stdout: "piped",
        }).output();
        seen = new TextDecoder().decode(ps.stdout).trim().split(/\s+/)
          .filter((p) => p !== "").map(Number);
        if (seen.some((p) => pids.rankOf(p) === undefined)) seen = [];
      }
      assertEquals(seen.map((p) => pids.rankOf(p)).sort(), [0, 1]);
      assertEquals(pids.rankOf(child.pid), undefined);
      assertEquals(seen.map((p) => pids.pidOf(pids.rankOf(p)!)), seen);
    } finally {
      pids.stop();
      for (const pid of seen) Deno.kill(pid, "SIGKILL");
      await child.status;
    }
  },
});

Deno.test({
  name:
    "runRanks() tells onRankFailure which rank the launcher reported killed",
  ignore: !isLinux,
  async fn() {
    // Two "ranks"; rank 1 is SIGKILLed and reported as hydra reports it.
    const launcher = await fakeLauncher(`
PMI_RANK=0 sleep 30 & r0=$!
PMI_RANK=1 sleep 30 & r1=$!
sleep 1
kill -9 $r1
echo "==================================================================================="
echo "=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES"
echo "=   PID $r1 RUNNING AT $(hostname)"
echo "=   EXIT CODE: 9"
echo "==================================================================================="
echo "YOUR APPLICATION TERMINATED WITH THE EXIT STRING: Killed (signal 9)"
echo "$r1" > "$(dirname "$0")/killed"
kill -9 $r0
exit 9`);
    try {
      const failures: unknown[] = [];
      const code = await runRanks(2, ["job.ts"], {
        mpiexec: launcher,
        onRankFailure: (f) => failures.push(f),
      });
      assertEquals(code, 9);
      const pid = Number(
        await Deno.readTextFile(`${launcher.replace(/mpiexec$/, "killed")}`),
      );
      assertEquals(failures, [{
        rank: 1,
        pid,
        host: Deno.hostname(),
        exitCode: 9,
        signal: "SIGKILL",
      }]);
    } finally {
      await Deno.remove(launcher.replace(/\/mpiexec$/, ""), {
        recursive: true,
      });
    }
  },
});

Deno.test({
  name:
    "runRanks() forwards SIGUSR1 and SIGTERM to the launcher and returns its exit code",
  ignore: !isLinux,
  async fn() {
    // runRanks runs in a process of its own: a SIGUSR1 to this test process
    // would start Deno's inspector here (Deno ≥ 2.9.2 does, as Node does).
    const launch = new URL("./launch.ts", import.meta.url).href;
    for (const signal of ["SIGUSR1", "SIGTERM"] as const) {
      const launcher = await fakeLauncher(
        `trap 'exit 75' USR1\ntrap 'exit 76' TERM\ntouch "$(dirname "$0")/up"\nsleep 5 & wait`,
      );
      const dir = launcher.replace(/\/mpiexec$/, "");
      try {
        const job = new Deno.Command(Deno.execPath(), {
          args: [
            "eval",
            `import { runRanks } from ${JSON.stringify(launch)};
Deno.exit(await runRanks(2, ["job.ts"], { mpiexec: ${
              JSON.stringify(launcher)
            } }));`,
          ],
          stdout: "null",
          stderr: "piped",
        }).spawn();
        // Until the launcher is up and runRanks listens for SIGTERM (which
        // nothing else in Deno catches; SIGUSR1's listener comes right after).
        for (let i = 0; i < 800; i++) {
          const up = await Deno.stat(`${dir}/up`).then(() => true, () => false);
          if (up && await catchesSignal(job.pid, 15)) break;
          await new Promise((r) => setTimeout(r, 25));
        }
        await new Promise((r) => setTimeout(r, 100));
        job.kill(signal);
        const out = await job.output();
        assertEquals(
          out.code,
          signal === "SIGUSR1" ? 75 : 76,
          `${signal}: ${new TextDecoder().decode(out.stderr)}`,
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
  },
});
