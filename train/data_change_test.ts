import {
  assertEquals,
  assertRejects,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import {
  type Communicator,
  SingleCommunicator,
} from "@scaling-vicreg/distributed/communicator";
import { fingerprintFiles } from "@scaling-vicreg/data/file-list-fingerprint";
import {
  agreeOnDataFiles,
  checkDataFiles,
  DataChangedError,
  dataFilesName,
} from "./data_change.ts";

/** A data set of `names` (each file holds its own name) under a temp root. */
async function dataset(names: string[]): Promise<string> {
  const root = await Deno.makeTempDir();
  await Deno.mkdir(`${root}/cat`);
  for (const n of names) await Deno.writeTextFile(`${root}/${n}`, n);
  return root;
}

const NAMES = ["cat/a.png", "cat/b.png", "cat/c.png", "d.png", "e.png"];

Deno.test("checkDataFiles() keeps the list once, and a resume on the same files passes with the same record", async () => {
  const root = await dataset(NAMES);
  const dir = await Deno.makeTempDir();
  try {
    const now = await fingerprintFiles(root, NAMES.map((n) => `${root}/${n}`));
    const fresh = await checkDataFiles(dir, now, undefined);
    assertEquals(fresh.record, {
      digest: now.digest,
      count: 5,
      list: dataFilesName(now.digest),
    });
    const kept = JSON.parse(
      await Deno.readTextFile(`${dir}/${fresh.record.list}`),
    );
    assertEquals(kept.files[0], ["cat/a.png", 9]);
    const again = await checkDataFiles(dir, now, fresh.record, { step: 3 });
    assertEquals(again, { record: fresh.record });
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkDataFiles() refuses a resume whose files were removed or resized, naming them; with allow it reports them and records the change", async () => {
  const root = await dataset(NAMES);
  const dir = await Deno.makeTempDir();
  try {
    const paths = () => NAMES.map((n) => `${root}/${n}`);
    const before = await fingerprintFiles(root, paths());
    const { record } = await checkDataFiles(dir, before, undefined);
    // Two files gone (one removed, one the up-front check now refuses, so
    // the data set no longer lists it), one truncated.
    await Deno.remove(`${root}/cat/b.png`);
    await Deno.writeTextFile(`${root}/d.png`, "d");
    const listed = paths().filter((p) => !/cat\/(b|c)\.png$/.test(p));
    const now = await fingerprintFiles(root, listed);
    const options = { step: 7, checkpoint: "checkpoint-00000007.json" };
    const refused = await assertRejects(
      () => checkDataFiles(dir, now, record, options),
      DataChangedError,
    );
    assertEquals(refused.key, "allow-data-change");
    assertEquals(
      refused.message,
      `--resume: the data set changed since checkpoint-00000007.json (5 files then, 3 in ${root} now): 2 files gone (removed or no longer readable: cat/b.png, cat/c.png), 1 file resized (d.png: 5 -> 1 bytes); resuming would train on another order from step 7: restore the files, or pass --allow-data-change to continue on the 3 files there are now`,
    );
    const allowed = await checkDataFiles(dir, now, record, {
      ...options,
      allow: true,
    });
    assertEquals(allowed.record.digest, now.digest);
    assertTrue(
      allowed.warning!.startsWith(
        "--allow-data-change: the data set changed since checkpoint-00000007.json",
      ),
      allowed.warning,
    );
    assertEquals(allowed.event, {
      step: 7,
      event: "data-change",
      from: record.list,
      to: allowed.record.list,
      removed: 2,
      resized: 1,
      added: 0,
      files: 3,
    });
    // Both lists are kept, so a later resume from either checkpoint can
    // name the files too.
    assertEquals(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      [record.list, allowed.record.list].sort(),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkDataFiles() still refuses when the saved list is gone, and says so; many files are named as the first three and a count", async () => {
  const many = Array.from({ length: 8 }, (_, i) => `f${i}.png`);
  const root = await dataset(many);
  const dir = await Deno.makeTempDir();
  try {
    const all = await fingerprintFiles(root, many.map((n) => `${root}/${n}`));
    const { record } = await checkDataFiles(dir, all, undefined);
    const fewer = await fingerprintFiles(root, [`${root}/f7.png`]);
    const named = await assertRejects(
      () => checkDataFiles(dir, fewer, record),
      DataChangedError,
    );
    assertTrue(
      named.message.includes(
        "7 files gone (removed or no longer readable: f0.png, f1.png, f2.png and 4 more)",
      ),
      named.message,
    );
    await Deno.remove(`${dir}/${record.list}`);
    const blind = await assertRejects(
      () => checkDataFiles(dir, fewer, record),
      DataChangedError,
    );
    assertTrue(
      blind.message.includes(
        `its file list, ${record.list}, is gone, so which files changed cannot be said`,
      ),
      blind.message,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});

/** Rank `rank` of two whose peer is rank 0 with `first`'s digest bytes. */
function rankOf(
  rank: number,
  first: Uint8Array,
  peerDiffers: number,
): Communicator {
  const single = new SingleCommunicator();
  return Object.assign(Object.create(single), {
    rank,
    size: 2,
    broadcast<T extends Uint8Array>(buf: T): Promise<T> {
      if (rank !== 0) buf.set(first);
      return Promise.resolve(buf);
    },
    allGather(buf: Float32Array): Promise<Float32Array> {
      return Promise.resolve(
        rank === 0
          ? Float32Array.of(buf[0], peerDiffers)
          : Float32Array.of(peerDiffers, buf[0]),
      );
    },
  });
}

Deno.test("agreeOnDataFiles() throws on every rank, naming the rank whose files differ from rank 0's", async () => {
  const a = "ab".repeat(32);
  const bytes = Uint8Array.from({ length: 32 }, () => 0xab);
  // Rank 1 with rank 0's digest, and rank 0 whose peer agrees: no error.
  await agreeOnDataFiles(rankOf(1, bytes, 0), a);
  await agreeOnDataFiles(rankOf(0, bytes, 0), a);
  // Rank 1 reads other files: it and rank 0 (told by the gather) both throw.
  const other = "cd".repeat(32);
  for (const comm of [rankOf(1, bytes, 0), rankOf(0, bytes, 1)]) {
    const error = await assertRejects(
      () => agreeOnDataFiles(comm, comm.rank === 1 ? other : a),
      DataChangedError,
    );
    assertEquals(
      error.message,
      "Rank 1 reads other files than rank 0 (the data set's file lists differ): every rank must see the same data set",
    );
  }
});
