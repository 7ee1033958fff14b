// One rank of the communicator tests (mpi_test.ts), started as
// `mpiexec -n R <deno> run -A distributed/_communicator_worker.ts MODE`. Each rank
// prints one JSON line on stdout.
//   check: every collective (and allReduceInBuckets) on seeded buffers against what this rank computes
//          itself (it regenerates every rank's buffer from the seed).
//   kill:  all-reduces in a loop; the last rank SIGKILLs itself mid-call.
//   stall: the last rank never arrives; the others' watchdog (1.5 s) fires.
//   sigint FILE: each rank writes FILE.<rank> once ready, then exits 0 on
//          SIGINT, or 5 if none comes within 60 s.
import { createCommunicator } from "./launch.ts";
import type { Communicator } from "./communicator.ts";
import { allReduceInBuckets } from "./bucket_all_reduce.ts";

/** mulberry32: a small seeded generator, values in [-1, 1). */
function values(seed: number, n: number): Float64Array {
  let a = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

function ranks(size: number): number[] {
  return Array.from({ length: size }, (_, r) => r);
}

function concat(parts: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const SIZES = [0, 1, 7, 1000, 1_000_003];

function seedOf(rank: number, n: number, salt: number): number {
  return 1_000_003 * salt + 7919 * rank + n;
}

/** Worst |got - want| / (1 + |want|), or Infinity on a length mismatch. */
function worst(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Infinity;
  let w = 0;
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    if (!(e <= w)) w = Number.isNaN(e) ? Infinity : e;
  }
  return w;
}

/** 0 when equal element for element, else Infinity (a failure). */
function exact(got: ArrayLike<number>, want: ArrayLike<number>): number {
  return worst(got, want) === 0 ? 0 : Infinity;
}

async function check(comm: Communicator): Promise<Record<string, number>> {
  const { rank, size } = comm;
  const errors: Record<string, number> = {};
  for (const n of SIZES) {
    // allReduce, float32 and float64: sum of every rank's buffer.
    for (
      const [name, Type, tol] of [
        ["f32", Float32Array, 1e-6],
        ["f64", Float64Array, 1e-15],
      ] as const
    ) {
      const mine = Type.from(values(seedOf(rank, n, 1), n));
      const want = new Float64Array(n);
      for (let r = 0; r < size; r++) {
        const theirs = Type.from(values(seedOf(r, n, 1), n));
        for (let i = 0; i < n; i++) want[i] += theirs[i];
      }
      const got = await comm.allReduce(mine);
      errors[`allReduce ${name} n=${n}`] = got === mine
        ? worst(got, want) / (tol * size)
        : Infinity;
    }
    // allGather, equal lengths: the concatenation in rank order.
    const mine = Float32Array.from(values(seedOf(rank, n, 2), n));
    const before = mine.slice();
    const want = concat(
      ranks(size).map((r) => Float32Array.from(values(seedOf(r, n, 2), n))),
    );
    const gathered = await comm.allGather(mine);
    errors[`allGather n=${n}`] = exact(gathered, want) + exact(mine, before);
    // allGather, lengths n + 3r (rank 0 may send nothing).
    const lengthOf = (r: number) =>
      Math.min(n, 1000) + 3 * r - (r === 0 ? 1 : 0);
    const ragged = Float64Array.from(
      values(seedOf(rank, n, 3), Math.max(0, lengthOf(rank))),
    );
    const raggedWant = concat(
      ranks(size).map((r) => values(seedOf(r, n, 3), Math.max(0, lengthOf(r)))),
    );
    const raggedGot = await comm.allGather(ragged);
    errors[`allGather ragged n=${n}`] = raggedGot instanceof Float64Array
      ? exact(raggedGot, raggedWant)
      : Infinity;
    // broadcast from the last rank.
    const root = size - 1;
    const sent = Float32Array.from(values(seedOf(rank, n, 4), n));
    const rootValues = Float32Array.from(values(seedOf(root, n, 4), n));
    await comm.broadcast(sent, root);
    errors[`broadcast n=${n}`] = exact(sent, rootValues);
  }
  // A view at an offset: only its elements are reduced.
  const whole = new Float32Array(20).fill(-5);
  const view = whole.subarray(5, 12).fill(rank + 1);
  await comm.allReduce(view);
  const wantWhole = new Float32Array(20).fill(-5);
  wantWhole.fill((size * (size + 1)) / 2, 5, 12);
  errors["allReduce subarray"] = exact(whole, wantWhole);
  // Bytes: the root's text reaches everyone.
  const text = new TextEncoder().encode(`config from rank ${rank}`.padEnd(24));
  await comm.broadcast(text, 0);
  errors["broadcast bytes"] = new TextDecoder().decode(text).trim() ===
      "config from rank 0"
    ? 0
    : Infinity;
  // Buckets: odd lengths, several per bucket, one larger than a bucket.
  const lengths = [5, 0, 17, 1, 300, 9, 2];
  const grads = lengths.map((n, k) =>
    Float32Array.from(values(seedOf(rank, n, 5 + k), n))
  );
  await allReduceInBuckets(comm, grads, { bucketBytes: 128 });
  errors["allReduceInBuckets"] = Math.max(
    ...lengths.map((n, k) => {
      const want = new Float64Array(n);
      for (let r = 0; r < size; r++) {
        const theirs = Float32Array.from(values(seedOf(r, n, 5 + k), n));
        for (let i = 0; i < n; i++) want[i] += theirs[i];
      }
      return worst(grads[k], want) / (1e-6 * size);
    }),
  );
  await comm.barrier();
  return errors;
}

const mode = Deno.args[0] ?? "check";
const comm = createCommunicator({
  kind: "mpi",
  timeoutMs: mode === "stall" ? 1500 : 60_000,
});
const last = comm.size - 1;
const print = (record: Record<string, unknown>) =>
  console.log(JSON.stringify({ rank: comm.rank, size: comm.size, ...record }));

if (mode === "check") {
  const errors = await check(comm);
  // An error ratio ≤ 1 is within tolerance (gathers and broadcasts are exact).
  const failures = Object.entries(errors).filter(([, e]) => !(e <= 1))
    .map(([name, e]) => `${name}: ${e}`);
  await comm.close();
  print({ checks: Object.keys(errors).length, failures });
} else if (mode === "kill") {
  const buf = new Float32Array(4_000_000);
  await comm.allReduce(buf);
  print({ ready: true });
  if (comm.rank === last) {
    setTimeout(() => Deno.kill(Deno.pid, "SIGKILL"), 300);
  }
  for (let i = 0; i < 1_000_000; i++) await comm.allReduce(buf);
  print({ finished: true });
} else if (mode === "sigint") {
  await comm.barrier();
  const timer = setTimeout(() => Deno.exit(5), 60_000);
  Deno.addSignalListener("SIGINT", async () => {
    clearTimeout(timer);
    await comm.barrier();
    await comm.close();
    print({ sigint: true });
    Deno.exit(0);
  });
  Deno.writeTextFileSync(`${Deno.args[1]}.${comm.rank}`, "ready");
} else if (mode === "stall") {
  await comm.barrier();
  print({ ready: true });
  if (comm.rank === last) {
    await new Promise((resolve) => setTimeout(resolve, 120_000));
  } else {
    try {
      await comm.allReduce(new Float32Array(10));
      print({ finished: true });
    } catch (error) {
      print({ error: error instanceof Error ? error.message : String(error) });
      Deno.exit(3);
    }
  }
}
