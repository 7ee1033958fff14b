// The MPI communicator's all-reduce, timed: a float32 buffer (100 MB by
// default) summed in place across the ranks, one JSON line from rank 0.
//
//   deno task bench:allreduce                 # starts 2 local ranks itself
//   deno task bench:allreduce --ranks 4 --mb 25
//   mpiexec -n 2 deno run -A bench/allreduce_bench.ts   # under a launcher
//
// Flags: --ranks N (2; only when not already under a launcher), --mb M (100),
// --iters N (10), --warmup N (2).
import {
  detectMpiLaunch,
  mpiexecCommand,
} from "@scaling-vicreg/distributed/launch";
import { mpiCommunicator } from "@scaling-vicreg/distributed/mpi";
import { flag, machine, round } from "./_util.ts";

const args = Deno.args;

if (detectMpiLaunch() === undefined) {
  const ranks = Number(flag(args, "ranks", "2"));
  const script = new URL(import.meta.url).pathname;
  const { command, args: launch } = mpiexecCommand(ranks, [script, ...args]);
  const { code } = await new Deno.Command(command, {
    args: launch,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  Deno.exit(code);
}

const megabytes = Number(flag(args, "mb", "100"));
const iters = Number(flag(args, "iters", "10"));
const warmup = Number(flag(args, "warmup", "2"));
const comm = mpiCommunicator();
const buf = new Float32Array(Math.round((megabytes * 1e6) / 4)).fill(1);
for (let i = 0; i < warmup; i++) await comm.allReduce(buf);
const times: number[] = [];
for (let i = 0; i < iters; i++) {
  await comm.barrier();
  const start = performance.now();
  await comm.allReduce(buf);
  times.push(performance.now() - start);
}
// Every element is 1 × size^(warmup + iters) after repeated summing.
const want = comm.size ** (warmup + iters);
const correct = Math.abs(buf[0] - want) <= 1e-6 * want &&
  Math.abs(buf[buf.length - 1] - want) <= 1e-6 * want;
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
if (comm.rank === 0) {
  console.log(JSON.stringify({
    case: `allreduce-f32-${megabytes}mb`,
    ranks: comm.size,
    bytes: buf.byteLength,
    ms_per_allreduce: round(median, 2),
    ms_min: round(times[0], 2),
    ms_max: round(times[times.length - 1], 2),
    gb_per_s: round(buf.byteLength / (median / 1000) / 1e9, 3),
    correct,
    mpi: comm.version,
    machine: machine(),
  }));
}
await comm.close();
