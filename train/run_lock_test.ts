import {
  assertEquals,
  assertRejects,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import {
  acquireRunLock,
  processStartTick,
  RUN_LOCK_FILE,
  RunLockedError,
  type RunLockHolder,
} from "./run_lock.ts";

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

Deno.test("acquireRunLock() refuses a second holder naming the first, and is free again after release()", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lock = await acquireRunLock(dir);
    const text = await Deno.readTextFile(`${dir}/${RUN_LOCK_FILE}`);
    const holder = JSON.parse(text) as RunLockHolder;
    assertEquals([holder.pid, holder.host], [Deno.pid, Deno.hostname()]);
    const error = await assertRejects(
      () => acquireRunLock(dir),
      RunLockedError,
      `is in use by another run (pid ${Deno.pid} on host ${Deno.hostname()} since ${holder.started}`,
    );
    assertEquals(error.holder?.pid, Deno.pid);
    await lock.release();
    assertEquals([...Deno.readDirSync(dir)].length, 0);
    const again = await acquireRunLock(dir);
    await again.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("acquireRunLock() reports and takes over the stale lock of a dead process or of a recycled pid", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/${RUN_LOCK_FILE}`;
    const pid = await deadPid();
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        pid,
        host: Deno.hostname(),
        started: "2026-01-01T00:00:00.000Z",
      }),
    );
    const stale: string[] = [];
    const lock = await acquireRunLock(dir, { onStale: (m) => stale.push(m) });
    assertEquals(stale.length, 1);
    assertTrue(stale[0].includes(`pid ${pid}`), stale[0]);
    assertTrue(stale[0].includes("no longer runs"), stale[0]);
    await lock.release();
    // This process's pid, but another start tick: the pid was reused.
    const tick = await processStartTick(Deno.pid);
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        pid: Deno.pid,
        host: Deno.hostname(),
        started: "2026-01-01T00:00:00.000Z",
        startTick: (tick ?? 0) + 1,
      }),
    );
    const reused = await acquireRunLock(dir, {
      onStale: (m) => stale.push(m),
    });
    assertEquals(stale.length, tick === undefined ? 1 : 2);
    await reused.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("acquireRunLock() leaves alone the lock of another host and a lock file being written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/${RUN_LOCK_FILE}`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        pid: await deadPid(),
        host: "other-host",
        started: "2026-01-01T00:00:00.000Z",
      }),
    );
    await assertRejects(
      () => acquireRunLock(dir),
      RunLockedError,
      "on host other-host",
    );
    await Deno.writeTextFile(path, "");
    await assertRejects(
      () => acquireRunLock(dir),
      RunLockedError,
      "is being written",
    );
    const lock = await acquireRunLock(dir, { unreadableStaleMs: -1 });
    await lock.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("acquireRunLock() held by a live child process fails in the parent at once", async () => {
  const dir = await Deno.makeTempDir();
  const script = `${dir}/hold.ts`;
  await Deno.writeTextFile(
    script,
    `import { acquireRunLock } from ${
      JSON.stringify(new URL("./run_lock.ts", import.meta.url).href)
    };
const lock = await acquireRunLock(${JSON.stringify(dir)});
console.log("held");
for await (const _ of Deno.stdin.readable) break;
await lock.release();
`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      script,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    assertEquals(new TextDecoder().decode(value).trim(), "held");
    reader.releaseLock();
    await assertRejects(
      () => acquireRunLock(dir),
      RunLockedError,
      `pid ${child.pid} on host`,
    );
    await child.stdin.close();
    assertTrue((await child.status).success);
    const lock = await acquireRunLock(dir);
    await lock.release();
  } finally {
    await child.stdout.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
