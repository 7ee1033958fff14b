import {
  assertEquals,
  assertThrows,
  assertTrue,
  ignoreUnless,
} from "@scaling-vicreg/backend/assert";
import { catchesSignal } from "./_test_signals.ts";
import { CommunicatorError } from "./communicator.ts";
import { mpiexecCommand, mpiMissing } from "./launch.ts";
import { findMpiLibrary, MPI_INSTALL_HINT, mpiCommunicator } from "./mpi.ts";
import { mpiRefusal } from "./_mpi_ffi.ts";

const missing = mpiMissing();
const ignore = ignoreUnless(missing === undefined, "mpi", missing);
if (ignore) {
  console.warn(`mpi_test: ${missing}; skipping (apt-get install mpich)`);
}

const ROOT = new URL("..", import.meta.url).pathname;
const WORKER = new URL("./_communicator_worker.ts", import.meta.url).pathname;

interface Job {
  code: number;
  /** Whether the job was still running after the limit and was stopped. */
  timedOut: boolean;
  lines: Record<string, unknown>[];
  stderr: string;
}

/** Runs the worker on `ranks` ranks; stops the job after `limitMs`. */
async function runWorker(
  ranks: number,
  mode: string,
  limitMs: number,
): Promise<Job> {
  const { command, args } = mpiexecCommand(ranks, [WORKER, mode]);
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, limitMs);
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(command, {
      args,
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
      signal: controller.signal,
    }).output();
  } finally {
    clearTimeout(timer);
  }
  const text = new TextDecoder();
  const lines = text.decode(out.stdout).split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line));
  lines.sort((a, b) => a.rank - b.rank);
  return { code: out.code, timedOut, lines, stderr: text.decode(out.stderr) };
}

Deno.test({
  name:
    "mpi communicator: allReduce/allGather/broadcast on 2 ranks equal the sums and concatenations each rank computes (sizes 0, 1, 7, 1000, 1000003)",
  ignore,
  async fn() {
    const job = await runWorker(2, "check", 300_000);
    assertTrue(!job.timedOut, "the job was still running after 300 s");
    assertEquals(job.code, 0, job.stderr);
    assertEquals(job.lines.map((l) => [l.rank, l.size]), [[0, 2], [1, 2]]);
    for (const line of job.lines) {
      assertEquals(line.failures, [], `rank ${line.rank}: ${job.stderr}`);
      assertTrue((line.checks as number) >= 28);
    }
  },
});

Deno.test({
  name:
    "mpi communicator: a rank SIGKILLed mid-allReduce makes the job exit non-zero within 60 s",
  ignore,
  async fn() {
    const job = await runWorker(2, "kill", 60_000);
    // Both ranks ran collectives before the kill, so the failure is the kill.
    assertEquals(job.lines.filter((l) => l.ready).length, 2, job.stderr);
    assertEquals(job.lines.filter((l) => l.finished).length, 0);
    assertTrue(job.code !== 0, "the job exited 0");
    assertTrue(
      !job.timedOut,
      "the job was still running after 60 s and had to be stopped",
    );
  },
});

Deno.test({
  name:
    "mpi communicator: a rank that never arrives trips the others' watchdog, which reject with CommunicatorError",
  ignore,
  async fn() {
    const job = await runWorker(2, "stall", 60_000);
    assertTrue(job.code !== 0, "the job exited 0");
    assertTrue(!job.timedOut, "the job was still running after 60 s");
    const error = job.lines.find((l) => l.rank === 0 && l.error)?.error;
    assertTrue(
      typeof error === "string" &&
        error.includes(
          "MPI_Allreduce on rank 0 of 2: the other ranks did not arrive within 1.5 s",
        ),
      `rank 0 reported ${String(error)}; ${job.stderr}`,
    );
  },
});

Deno.test("findMpiLibrary() names the file it could not open", () => {
  assertThrows(
    () => findMpiLibrary("/nonexistent/libmpich.so.12"),
    CommunicatorError,
    "No usable MPI library: install MPICH",
  );
  assertThrows(
    () => findMpiLibrary("/nonexistent/libmpich.so.12"),
    CommunicatorError,
    "tried /nonexistent/libmpich.so.12:",
  );
});

Deno.test("mpiRefusal() takes MPICH-ABI libraries and refuses Open MPI by name", () => {
  assertEquals(mpiRefusal("MPICH Version: 4.0.2", MPI_INSTALL_HINT), undefined);
  assertEquals(
    mpiRefusal("Intel(R) MPI Library 2021.10 for Linux* OS", "h"),
    undefined,
  );
  assertEquals(mpiRefusal("MVAPICH2 Version : 2.3.7", "h"), undefined);
  const openMpi = mpiRefusal("Open MPI v4.1.4, package: Debian", "h");
  assertTrue(openMpi?.includes("Open MPI's handles are pointers"), openMpi);
  assertTrue(mpiRefusal("Something MPI 1.0", "h")?.includes("not MPICH"));
});

Deno.test({
  name:
    "runRanks() returns the job's exit code and forwards one SIGINT to every rank",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "run_ranks_test_" });
    try {
      const ready = `${dir}/ready`;
      const module = new URL("./launch.ts", import.meta.url).href;
      const wrapper = new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          `import { runRanks } from "${module}";
           Deno.exit(await runRanks(2, ["${WORKER}", "sigint", "${ready}"]));`,
        ],
        cwd: ROOT,
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(120_000),
      }).spawn();
      const output = wrapper.output();
      // Wait until both ranks and runRanks itself listen for SIGINT.
      for (let tries = 0; tries < 600; tries++) {
        const files = [0, 1].map((r) => exists(`${ready}.${r}`));
        if (files.every(Boolean) && await catchesSignal(wrapper.pid, 2)) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      wrapper.kill("SIGINT");
      const out = await output;
      const text = new TextDecoder();
      const stdout = text.decode(out.stdout);
      assertEquals(out.code, 0, stdout + text.decode(out.stderr));
      assertEquals(
        stdout.split("\n").filter((l) => l.includes('"sigint":true')).length,
        2,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "mpiCommunicator() under mpiexec with an npx wrapper above deno names the wrapper instead of failing in MPI_Init",
  ignore: ignore || Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mpi_wrapper_test_" });
    try {
      // A stand-in for npx: a script named npx that runs deno as its child.
      const npx = `${dir}/npx`;
      await Deno.writeTextFile(npx, '#!/bin/sh\n"$@"\n');
      await Deno.chmod(npx, 0o755);
      const { command, args } = mpiexecCommand(1, [WORKER, "check"], {
        deno: npx,
        denoArgs: [Deno.execPath(), "run", "-A"],
      });
      const out = await new Deno.Command(command, {
        args,
        cwd: ROOT,
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(60_000),
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertTrue(out.code !== 0, "the rank exited 0");
      assertTrue(
        stderr.includes(
          `CommunicatorError: MPI cannot start: "/bin/sh ${npx}`,
        ) &&
          stderr.includes("launch the deno binary itself"),
        stderr,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("mpiCommunicator() rejects a negative or non-finite timeout before touching MPI", () => {
  assertThrows(
    () => mpiCommunicator({ timeoutMs: -1, library: "/nonexistent/libmpi.so" }),
    RangeError,
    "MPI timeoutMs (or VICREG_MPI_TIMEOUT seconds) must be ≥ 0: received -1",
  );
  assertThrows(
    () => mpiCommunicator({ timeoutMs: NaN }),
    RangeError,
    "received NaN",
  );
});
