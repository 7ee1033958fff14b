/**
 * Fault injection for run directories (`deno task faults`): a tiny pretraining
 * through the CLI, SIGKILLed at random moments (checkpoint writes included:
 * it checkpoints every step) and resumed each time, compared with the same
 * run left alone. Prints
 * `N kills, N resumes, final weights identical: true, temp files left: 0`.
 *
 * With `--ranks R` the run is `vicreg pretrain --ranks R` (mpiexec and R
 * ranks under the command) and each kill is a SIGKILL to one rank, drawn at
 * random (inside a step, an all-reduce, or rank 0's checkpoint write); the
 * second line then also says how many kills were reported in one line naming
 * the rank, how long the slowest took to stop the whole job, and whether any
 * rank outlived its job.
 *
 * Flags: `--kills 20`, `--seed 1`, `--backend cpu-fast`, `--ranks 1`.
 *
 * @module
 */
import { Rng } from "@scaling-vicreg/backend";
import { RankPids } from "@scaling-vicreg/distributed";
import { flag } from "./_util.ts";

const args = Deno.args;
const kills = Number(flag(args, "kills", "20"));
const seed = Number(flag(args, "seed", "1"));
const backend = flag(args, "backend", "cpu-fast");
const ranks = Number(flag(args, "ranks", "1"));
const main = new URL("../cli/main.ts", import.meta.url).pathname;

const RUN = [
  ...["--preset", "tiny", "--backend", backend, "--seed", "7"],
  ...["--size", "16", "--image-size", "24", "--batch-size", "8"],
  ...["--num-images", "64", "--epochs", "6", "--mlp", "32-32"],
  ...["--local-mlp", "16-8", "--log-every", "1", "--checkpoint-every", "1"],
  ...["--keep-checkpoints", "2"],
  ...(ranks > 1 ? ["--ranks", String(ranks)] : []),
];

/** Steps of the run above: 6 epochs of 64 / 8 batches. */
const TOTAL_STEPS = 48;

function pretrain(dir: string, resume: boolean): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      main,
      "pretrain",
      ...RUN,
      "--exp-dir",
      dir,
      ...(resume ? ["--resume"] : []),
    ],
    // One thread per rank: the ranks share the machine.
    env: ranks > 1 ? { OMP_NUM_THREADS: "1", OPENBLAS_NUM_THREADS: "1" } : {},
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

/** A rank SIGKILLed: which, its pid, and when. */
interface RankKill {
  rank: number;
  pid: number;
  at: number;
}

/**
 * SIGKILLs one rank of the job, drawn from `rng` (waiting up to 30 s for
 * the ranks to start); `undefined` when the job ended first.
 */
async function killRank(
  child: Deno.ChildProcess,
  rng: Rng,
  done: () => boolean,
): Promise<RankKill | undefined> {
  const rank = Math.min(ranks - 1, Math.floor(rng.uniform(0, ranks)));
  const deadline = Date.now() + 30_000;
  while (!done() && Date.now() < deadline) {
    const pids = new RankPids(child.pid, ranks);
    pids.stop();
    const pid = pids.pidOf(rank);
    if (pid !== undefined) {
      try {
        Deno.kill(pid, "SIGKILL");
        return { rank, pid, at: performance.now() };
      } catch {
        return undefined; // it exited in between
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

/** Whether a process runs (not a zombie). */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function finish(child: Deno.ChildProcess, what: string): Promise<void> {
  const { code, stderr } = await child.output();
  if (code !== 0) {
    throw new Error(
      `${what} exited with ${code}: ${
        new TextDecoder().decode(stderr).trim().split("\n").at(-1)
      }`,
    );
  }
}

function hasCheckpoint(dir: string): boolean {
  try {
    return [...Deno.readDirSync(dir)].some((e) =>
      /^checkpoint-\d+\.json$/.test(e.name)
    );
  } catch {
    return false;
  }
}

function tempFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (e.isDirectory) out.push(...tempFiles(`${dir}/${e.name}`));
    else if (/\.tmp-\d+-/.test(e.name)) out.push(`${dir}/${e.name}`);
  }
  return out;
}

function newest(dir: string, pattern: RegExp): string {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      pattern.test(n)
    ).sort().at(-1) ?? "";
  } catch {
    return "";
  }
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The steps' losses of a metrics file (throughput differs run to run). */
function losses(dir: string): string {
  return Deno.readTextFileSync(`${dir}/metrics.jsonl`).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((m) => m.event === undefined)
    .map((m) => `${m.step}:${m.loss}`).join(" ");
}

const root = await Deno.makeTempDir({ prefix: "faults-" });
try {
  const straight = `${root}/straight`;
  const started = performance.now();
  const first = pretrain(straight, false);
  // Start-up (process, backend, data) lasts until the first metrics line.
  let startup = 0;
  const watch = setInterval(() => {
    const text = (() => {
      try {
        return Deno.readTextFileSync(`${straight}/metrics.jsonl`);
      } catch {
        return "";
      }
    })();
    if (startup === 0 && text.trim() !== "") {
      startup = (performance.now() - started) / 1000;
    }
  }, 20);
  await finish(first, "the uninterrupted run").finally(() =>
    clearInterval(watch)
  );
  const seconds = (performance.now() - started) / 1000;
  const training = Math.max(0.1, seconds - startup);

  const faulted = `${root}/faulted`;
  const rng = new Rng(seed);
  let killed = 0;
  let resumes = 0;
  let finishedEarly = 0;
  let tempsRemoved = 0;
  let locksTaken = 0;
  const byRank = new Array(ranks).fill(0);
  let named = 0;
  let slowestStop = 0;
  let survivors = 0;
  while (killed < kills) {
    const resume = hasCheckpoint(faulted);
    if (resume) resumes += 1;
    const child = pretrain(faulted, resume);
    // Inside start-up now and then, else a random share of the training
    // left, sized so that the kills spread over what remains and leave some
    // of it to the last resume.
    const done = Number(
      /(\d+)/.exec(newest(faulted, /^checkpoint-\d+\.json$/))?.[1] ?? 0,
    );
    const left = training * (1 - done / TOTAL_STEPS);
    const delay = 1000 * (rng.uniform(0.3, 1) * startup +
      rng.uniform(0, 1) * left / (kills - killed + 1));
    const timer = new Promise<"kill">((r) =>
      setTimeout(() => r("kill"), delay)
    );
    let exited = false;
    const status = child.status.then(() => {
      exited = true;
      return "exit" as const;
    });
    let outcome = await Promise.race([status, timer]);
    let rankKill: RankKill | undefined;
    let rankPids: number[] = [];
    if (outcome === "kill" && ranks > 1) {
      const pids = new RankPids(child.pid, ranks);
      pids.stop();
      rankKill = await killRank(child, rng, () => exited);
      rankPids = Array.from({ length: ranks }, (_, r) => pids.pidOf(r))
        .filter((p): p is number => p !== undefined);
      if (rankKill === undefined) outcome = "exit";
      else killed += 1;
    } else if (outcome === "kill") {
      try {
        child.kill("SIGKILL");
        killed += 1;
      } catch {
        outcome = "exit"; // It exited in between.
      }
    }
    const { code, stderr } = await child.output();
    const text = new TextDecoder().decode(stderr);
    if (rankKill !== undefined) {
      byRank[rankKill.rank] += 1;
      slowestStop = Math.max(
        slowestStop,
        (performance.now() - rankKill.at) / 1000,
      );
      if (
        text.includes(
          `rank ${rankKill.rank} (pid ${rankKill.pid} on ${Deno.hostname()}) was killed by SIGKILL`,
        )
      ) named += 1;
      await new Promise((r) => setTimeout(r, 500));
      survivors += rankPids.filter(alive).length;
    }
    tempsRemoved += Number(/Removed (\d+) temp file/.exec(text)?.[1] ?? 0);
    if (text.includes("Took over a stale lock")) locksTaken += 1;
    if (outcome === "exit") {
      if (code !== 0) {
        throw new Error(
          `a run exited with ${code}: ${text.trim().split("\n").at(-1)}`,
        );
      }
      // It finished before its kill: the series is over.
      finishedEarly += 1;
      break;
    }
  }
  if (finishedEarly === 0) {
    resumes += 1;
    const last = pretrain(faulted, true);
    const { code, stderr } = await last.output();
    const text = new TextDecoder().decode(stderr);
    if (code !== 0) {
      throw new Error(
        `the last resume exited with ${code}: ${
          text.trim().split("\n").at(-1)
        }`,
      );
    }
    tempsRemoved += Number(/Removed (\d+) temp file/.exec(text)?.[1] ?? 0);
    if (text.includes("Took over a stale lock")) locksTaken += 1;
  }

  const ckpt = newest(straight, /^checkpoint-\d+\.safetensors$/);
  const identical = newest(faulted, /^checkpoint-\d+\.safetensors$/) ===
      ckpt &&
    same(
      Deno.readFileSync(`${straight}/${ckpt}`),
      Deno.readFileSync(`${faulted}/${ckpt}`),
    ) &&
    same(
      Deno.readFileSync(`${straight}/backbone.safetensors`),
      Deno.readFileSync(`${faulted}/backbone.safetensors`),
    );
  const left = tempFiles(faulted);
  console.log(
    `${killed} kills, ${resumes} resumes, final weights identical: ${identical}, temp files left: ${left.length}`,
  );
  console.log(
    `(losses identical: ${
      losses(straight) === losses(faulted)
    }; the series ended ${
      finishedEarly
        ? "with a run that finished before its kill"
        : "with a last resume"
    }; temp files of killed writes removed by the next run: ${tempsRemoved}; stale locks taken over: ${locksTaken}; kills before the first checkpoint restart without --resume; uninterrupted run ${
      seconds.toFixed(1)
    } s, start-up ${startup.toFixed(1)} s; backend ${backend}; seed ${seed})`,
  );
  if (ranks > 1) {
    console.log(
      `(${ranks} ranks: kills by rank ${
        byRank.join("/")
      }; named in one line: ${named} of ${killed}; slowest stop of the whole job after a kill: ${
        slowestStop.toFixed(1)
      } s; ranks alive after their job ended: ${survivors})`,
    );
  }
  if (left.length > 0) console.log(`temp files: ${left.join(" ")}`);
} finally {
  await Deno.remove(root, { recursive: true });
}
