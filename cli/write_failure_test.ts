// A checkpoint write the disk cannot take (a file-size limit, a full
// tmpfs): `vicreg pretrain` stops with one line naming the file and the free
// space, the previous checkpoint stays the newest and intact, nothing
// half-written is left, and `--resume` ends identical to the run left alone.
import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";
import { loadLatestCheckpoint } from "@scaling-vicreg/train";
import {
  assertSameRun,
  checkpointJson,
  namesIn,
  preemptRun,
  runPretrainCli,
  runRecord,
  spawnPretrain,
  tempFiles,
  waitForSteps,
} from "./_run_testing.ts";

/** Why a command cannot run here, or `undefined`. */
async function missingCommand(
  program: string,
  args: string[],
): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(program, {
      args,
      stdout: "null",
      stderr: "piped",
    }).output();
    return out.code === 0
      ? undefined
      : `${program} ${args.join(" ")}: ${
        new TextDecoder().decode(out.stderr).trim().split("\n")[0]
      }`;
  } catch (error) {
    return `${program}: ${(error as Error).message}`;
  }
}

const noPrlimit = Deno.build.os !== "linux"
  ? "prlimit is Linux's"
  : await missingCommand("prlimit", ["--fsize=1048576", "true"]);
if (noPrlimit) {
  console.warn(`write_failure_test: ${noPrlimit}; skipping the file-size test`);
}

/** Why no tmpfs can be mounted here (it needs CAP_SYS_ADMIN), or `undefined`. */
async function noTmpfs(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "tmpfs is Linux's";
  const dir = await Deno.makeTempDir();
  try {
    const why = await missingCommand("mount", [
      "-t",
      "tmpfs",
      "-o",
      "size=1m",
      "tmpfs",
      dir,
    ]);
    if (why === undefined) await missingCommand("umount", [dir]);
    return why;
  } finally {
    await Deno.remove(dir).catch(() => {});
  }
}
const tmpfsMissing = await noTmpfs();
if (tmpfsMissing) {
  console.warn(
    `write_failure_test: cannot mount a tmpfs (${tmpfsMissing}); skipping the full-disk test`,
  );
}

/** Makes `dir` and mounts a tmpfs of `size` (`10m`) on it. */
async function mountTmpfs(dir: string, size: string): Promise<void> {
  await Deno.mkdir(dir);
  const out = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
}

/**
 * Unmounts a test's tmpfs: lazily (`-l`) when a process still holds a file
 * there, so that the folder can be removed either way.
 */
async function unmount(dir: string): Promise<void> {
  const out = await new Deno.Command("umount", { args: [dir] }).output();
  if (out.code !== 0) {
    await new Deno.Command("umount", { args: ["-l", dir] }).output();
  }
}

/** Runs the command under a 1 MiB file-size limit, SIGXFSZ ignored (EFBIG). */
function underFileSizeLimit(args: string[]): [string, string[]] {
  return [
    "sh",
    ["-c", `trap '' XFSZ; exec prlimit --fsize=1048576 -- "$@"`, "sh", ...args],
  ];
}

Deno.test({
  name:
    "vicreg pretrain: a checkpoint over the file-size limit (EFBIG) stops the run in one line naming the file and the free space; the previous checkpoint stays the newest and --resume ends identical",
  ignore: noPrlimit !== undefined,
  async fn() {
    const root = await Deno.makeTempDir();
    const dir = `${root}/limited`;
    try {
      const [straight] = await Promise.all([
        runPretrainCli(`${root}/straight`),
        (async () => {
          // A checkpoint mid-run (3.8 MB: over the limit; metrics are not).
          const { step } = await preemptRun(dir, {}, (c) => c.kill("SIGUSR1"));
          const failed = await runPretrainCli(
            dir,
            { resume: true },
            underFileSizeLimit,
          );
          assertEquals(failed.code, 1, failed.stderr);
          const line = failed.stderr.trim().split("\n").at(-1)!;
          const next = step < 4 ? 4 : 8;
          assertTrue(
            line.startsWith(
              `vicreg pretrain: Cannot write ${dir}/checkpoint-${
                String(next).padStart(8, "0")
              }.safetensors: file too large`,
            ),
            line,
          );
          assertTrue(/\(EFBIG\); [\d.]+ [KMG]iB free there; /.test(line), line);
          assertTrue(
            line.endsWith(
              `the last checkpoint, ${
                checkpointJson(step)
              }, is intact: raise the limit, then run the same command with --resume`,
            ),
            line,
          );
          assertEquals(tempFiles(dir), []);
          assertEquals(
            namesIn(dir, /^checkpoint-\d+\.(json|safetensors)$/).filter((n) =>
              n.includes(String(next).padStart(8, "0"))
            ),
            [],
          );
          assertEquals((await loadLatestCheckpoint(dir))?.meta.step, step);
          const resumed = await runPretrainCli(dir, { resume: true });
          assertEquals(resumed.code, 0, resumed.stderr);
        })(),
      ]);
      assertEquals(straight.code, 0, straight.stderr);
      assertSameRun(await runRecord(dir), await runRecord(`${root}/straight`));
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "vicreg pretrain on a full tmpfs (ENOSPC): the third checkpoint fails in one line, the second stays intact, nothing half-written is left, and a copy of the run directory resumes to the end identical",
  ignore: tmpfsMissing !== undefined,
  async fn() {
    const root = await Deno.makeTempDir();
    const disk = `${root}/disk`;
    // Two checkpoints of 3.8 MB fit in 10 MiB; the third does not (it is
    // written in full before the oldest is pruned).
    const flags = { "checkpoint-every": 1, "keep-checkpoints": 2 };
    await mountTmpfs(disk, "10m");
    try {
      const [straight, full] = await Promise.all([
        runPretrainCli(`${root}/straight`, flags),
        runPretrainCli(`${disk}/run`, flags),
      ]);
      assertEquals(straight.code, 0, straight.stderr);
      assertEquals(full.code, 1, full.stderr);
      const line = full.stderr.trim().split("\n").at(-1)!;
      assertTrue(
        line.startsWith(
          `vicreg pretrain: Cannot write ${disk}/run/checkpoint-00000003.safetensors: no space left on the device (ENOSPC); `,
        ),
        line,
      );
      assertTrue(
        /; [\d.]+ [KM]iB free there; the last checkpoint, checkpoint-00000002\.json, is intact: make room, then run the same command with --resume$/
          .test(line),
        line,
      );
      assertEquals(tempFiles(`${disk}/run`), []);
      assertEquals(namesIn(`${disk}/run`, /^checkpoint-/), [
        "checkpoint-00000001.json",
        "checkpoint-00000001.safetensors",
        "checkpoint-00000002.json",
        "checkpoint-00000002.safetensors",
      ]);
      assertEquals((await loadLatestCheckpoint(`${disk}/run`))?.meta.step, 2);
      // Room made: the run directory moved to a disk with space.
      const moved = `${root}/moved`;
      const cp = await new Deno.Command("cp", {
        args: ["-r", `${disk}/run`, moved],
      }).output();
      assertEquals(cp.code, 0);
      const resumed = await runPretrainCli(moved, { ...flags, resume: true });
      assertEquals(resumed.code, 0, resumed.stderr);
      assertSameRun(
        await runRecord(moved),
        await runRecord(`${root}/straight`),
      );
    } finally {
      await unmount(disk);
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "vicreg pretrain on a disk remounted read-only mid-run (EROFS): stopped in one line naming the metrics or checkpoint file, and the newest checkpoint resumes to the end identical",
  ignore: tmpfsMissing !== undefined,
  async fn() {
    const root = await Deno.makeTempDir();
    const disk = `${root}/disk`;
    // Without the TensorBoard event file, which stays open for writing and
    // so would keep the tmpfs from being remounted read-only.
    const flags = {
      "checkpoint-every": 1,
      "keep-checkpoints": 2,
      "no-tensorboard": true,
    };
    await mountTmpfs(disk, "64m");
    const mount = (args: string[]) =>
      new Deno.Command("mount", { args, stderr: "piped" }).output();
    try {
      const run = `${disk}/run`;
      const [straight, failed] = await Promise.all([
        runPretrainCli(`${root}/straight`, flags),
        (async () => {
          const child = spawnPretrain(run, flags);
          const output = child.output();
          await waitForSteps(run, 2);
          // A remount is refused ("busy") while a file is open for writing:
          // the run writes a checkpoint every step, so try between writes.
          let ro = await mount(["-o", "remount,ro", disk]);
          for (let i = 0; ro.code !== 0 && i < 400; i++) {
            await new Promise((r) => setTimeout(r, 5));
            ro = await mount(["-o", "remount,ro", disk]);
          }
          assertEquals(ro.code, 0, new TextDecoder().decode(ro.stderr));
          const out = await output;
          return {
            code: out.code,
            stderr: new TextDecoder().decode(out.stderr),
          };
        })(),
      ]);
      assertEquals(straight.code, 0, straight.stderr);
      assertEquals(failed.code, 1, failed.stderr);
      const newest = (await loadLatestCheckpoint(run))?.meta.step;
      assertTrue(newest !== undefined && newest >= 1, `newest: ${newest}`);
      const line = failed.stderr.trim().split("\n").at(-1)!;
      assertTrue(
        new RegExp(
          `^vicreg pretrain: Cannot write ${run}/(metrics\\.jsonl|checkpoint-\\d{8}\\.safetensors): read-only file system \\(EROFS\\); [\\d.]+ [KMG]iB free there; the last checkpoint, ${
            checkpointJson(newest)
          }, is intact: make the folder writable, then run the same command with --resume$`,
        ).test(line),
        line,
      );
      // A write whose file was closed before the remount can neither be
      // renamed nor removed on a read-only disk: at most that one temporary
      // file stays, never under a checkpoint's name, and the resume removes it.
      const left = tempFiles(run);
      assertTrue(
        left.length <= 1 &&
          left.every((f) =>
            /\/(metrics\.jsonl|checkpoint-\d{8}\.(safetensors|json))\.tmp-\d+-/
              .test(f)
          ),
        `temporary files left: ${left.join(", ")}`,
      );
      const moved = `${root}/moved`;
      const cp = await new Deno.Command("cp", { args: ["-r", run, moved] })
        .output();
      assertEquals(cp.code, 0);
      const resumed = await runPretrainCli(moved, { ...flags, resume: true });
      assertEquals(resumed.code, 0, resumed.stderr);
      assertEquals(tempFiles(moved), []);
      assertSameRun(
        await runRecord(moved),
        await runRecord(`${root}/straight`),
      );
    } finally {
      await unmount(disk);
      await Deno.remove(root, { recursive: true });
    }
  },
});
