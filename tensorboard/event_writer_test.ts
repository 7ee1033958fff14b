import {
  assertEquals,
  assertRejects,
  assertThrows,
  assertTrue,
  ignoreUnless,
  pythonImports,
} from "@scaling-vicreg/backend/assert";
import { EventWriter } from "./event_writer.ts";
import { decodeEvent, readRecords } from "./_test_reader.ts";

/** A fixed clock: 2025-12-06T05:46:40.125Z, then + 1 ms a call. */
function clock(start = 1765000000125): () => number {
  let t = start;
  return () => t++;
}

const options = { now: clock(), hostname: () => "test-host" };

/** The header bytes of a PNG of `width` × `height`, colour type `type`. */
function fakePng(width: number, height: number, type = 2): Uint8Array {
  const bytes = new Uint8Array(33 + 5);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
  bytes.set(new TextEncoder().encode("IHDR"), 12);
  const view = new DataView(bytes.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  bytes.set([8, type, 0, 0, 0], 24);
  return bytes;
}

async function readEvents(path: string) {
  const { records, tornBytes } = readRecords(await Deno.readFile(path));
  return { events: records.map(decodeEvent), tornBytes };
}

Deno.test("EventWriter.open() names the file for the time and host and writes the brain.Event:2 header", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const writer = await EventWriter.open(dir, {
      now: clock(),
      hostname: () => "my host/1",
    });
    await writer.close();
    assertEquals(
      writer.path,
      `${dir}/events.out.tfevents.1765000000.my_host_1`,
    );
    const { events, tornBytes } = await readEvents(writer.path);
    assertEquals(tornBytes, 0);
    assertEquals(events, [{
      wallTime: 1765000000.125,
      step: 0,
      fileVersion: "brain.Event:2",
    }]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EventWriter writes what it queued only on flush(), as whole events", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const writer = await EventWriter.open(dir, { ...options, now: clock() });
    const header = (await Deno.stat(writer.path)).size;
    writer.sessionStart(0);
    writer.scalar("train/loss", 0.1, 1);
    writer.image("preview", fakePng(30, 20), 0);
    writer.text("config", "`a: 1`", 0);
    assertEquals((await Deno.stat(writer.path)).size, header);
    await writer.flush();
    await writer.close();
    const { events, tornBytes } = await readEvents(writer.path);
    assertEquals(tornBytes, 0);
    assertEquals(events.length, 5);
    assertEquals(events[1].sessionStatus, 1);
    assertEquals(events[1].step, 0);
    assertEquals(events[2].step, 1);
    assertEquals(events[2].values!.map((v) => [v.tag, v.kind, v.scalar]), [[
      "train/loss",
      2,
      Math.fround(0.1),
    ]]);
    assertEquals(events[3].values![0].tag, "preview");
    assertEquals(events[3].values![0].kind, 4);
    assertEquals(events[4].values![0].kind, 8);
    // The wall times follow the injected clock, in seconds: one reading for
    // the file's name and header, one for each event.
    assertEquals(
      events.map((e) => e.wallTime),
      [0, 1, 2, 3, 4].map((i) => (1765000000125 + i) / 1000),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EventWriter: a torn last record still lets a reader read every record before it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const writer = await EventWriter.open(dir, options);
    for (let step = 1; step <= 5; step++) {
      writer.scalar("train/loss", step / 10, step);
      await writer.flush();
    }
    await writer.close();
    const whole = await Deno.readFile(writer.path);
    const { records } = readRecords(whole);
    assertEquals(records.length, 6);
    // Cut the file inside the last record (a kill mid-append): in its
    // length, in its length's checksum, in its data, and one byte short.
    const last = records[5].byteOffset - 12; // the last record starts here
    for (const cut of [last + 3, last + 9, last + 20, whole.length - 1]) {
      await Deno.writeFile(writer.path, whole.subarray(0, cut));
      const torn = await readEvents(writer.path);
      assertEquals(torn.events.length, 5, `cut at ${cut}`);
      assertEquals(torn.tornBytes, cut - last);
      assertEquals(torn.events.slice(1).map((e) => e.step), [1, 2, 3, 4]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EventWriter.open() in the same second opens a new file that sorts after the old one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = await EventWriter.open(dir, { ...options, now: clock() });
    const second = await EventWriter.open(dir, { ...options, now: clock() });
    await first.close();
    await second.close();
    assertEquals(second.path, `${first.path}.1`);
    assertTrue([first.path, second.path].sort()[1] === second.path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EventWriter.open() puts a suffix before the counter, and EventWriter.list() finds the files by it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assertEquals(await EventWriter.list(`${dir}/missing`), []);
    const plain = await EventWriter.open(dir, { ...options, now: clock() });
    const a = await EventWriter.open(dir, {
      ...options,
      now: clock(),
      suffix: ".probe",
    });
    const b = await EventWriter.open(dir, {
      ...options,
      now: clock(),
      suffix: ".probe",
    });
    for (const w of [plain, a, b]) await w.close();
    const base = "events.out.tfevents.1765000000.test-host";
    assertEquals(a.path, `${dir}/${base}.probe`);
    assertEquals(b.path, `${dir}/${base}.probe.1`);
    await Deno.writeTextFile(`${dir}/metrics.jsonl`, "");
    assertEquals(await EventWriter.list(dir, ".probe"), [
      `${base}.probe`,
      `${base}.probe.1`,
    ]);
    assertEquals((await EventWriter.list(dir)).length, 3);
    await assertRejects(
      () => EventWriter.open(dir, { ...options, suffix: "/x" }),
      RangeError,
      "suffix",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EventWriter refuses an image that is not a PNG, and logging after close()", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const writer = await EventWriter.open(dir, options);
    assertThrows(
      () => writer.image("preview", new Uint8Array(40), 0),
      TypeError,
      'Expected image "preview" to be a PNG file',
    );
    await writer.close();
    await writer.close(); // a second close does nothing
    assertThrows(() => writer.scalar("a", 1, 1), TypeError, "is closed");
    await assertRejects(
      () => EventWriter.open(`${writer.path}/below-a-file`, options),
      Error,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const TENSORBOARD = await pythonImports("tensorboard");

/**
 * What TensorBoard's EventAccumulator reads from `dir`: its tags, scalars
 * (step, value), images (step, width, height, bytes) and text (step, text).
 */
async function accumulate(dir: string) {
  const script = `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "images": 0, "tensors": 0})
acc.Reload()
tags = acc.Tags()
print(json.dumps({
  "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
  "images": {t: [[e.step, e.width, e.height, len(e.encoded_image_string)] for e in acc.Images(t)] for t in tags["images"]},
  "text": {t: [[e.step, e.tensor_proto.string_val[0].decode()] for e in acc.Tensors(t)] for t in tags["tensors"]},
  "plugins": {t: acc.SummaryMetadata(t).plugin_data.plugin_name for t in tags["tensors"]},
}))
`;
  const out = await new Deno.Command("python3", {
    args: ["-c", script, dir],
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test({
  name:
    "EventWriter's files read back by TensorBoard's EventAccumulator, a restart's SessionLog.START dropping the re-run steps",
  ignore: ignoreUnless(
    TENSORBOARD,
    "tensorboard",
    "python3 cannot import tensorboard (pip install tensorboard)",
  ),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const first = await EventWriter.open(dir, { ...options, now: clock() });
      first.sessionStart(0);
      first.image("preview", fakePng(30, 20), 0);
      first.text("config", "```yaml\nepochs: 1\n```", 0);
      for (let step = 1; step <= 5; step++) {
        first.scalar("train/loss", step, step);
        await first.flush();
      }
      await first.close();
      // Killed in the middle of the last record (step 5).
      const bytes = await Deno.readFile(first.path);
      await Deno.writeFile(first.path, bytes.subarray(0, bytes.length - 7));
      // Resumed from a checkpoint at step 3: steps 4 and on again.
      const second = await EventWriter.open(dir, { ...options, now: clock() });
      second.sessionStart(4);
      for (let step = 4; step <= 6; step++) {
        second.scalar("train/loss", 10 * step, step);
        await second.flush();
      }
      await second.close();
      const read = await accumulate(dir);
      assertEquals(read.scalars, {
        "train/loss": [[1, 1], [2, 2], [3, 3], [4, 40], [5, 50], [6, 60]],
      });
      assertEquals(read.images, { preview: [[0, 30, 20, 38]] });
      assertEquals(read.text, { config: [[0, "```yaml\nepochs: 1\n```"]] });
      assertEquals(read.plugins, { config: "text" });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
