import { join } from "node:path";
import { Image } from "imagescript";
import {
  assertEquals,
  assertRejects,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { DatasetError, encodePng, readImage } from "./decode.ts";
import { DecodePool } from "./decode_pool.ts";
import { buildPng } from "./_test_png.ts";

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "decode_pool_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A 24×16 picture with a gradient, so JPEG decoding has work to do. */
function gradient(): Image {
  const image = new Image(24, 16);
  for (let y = 1; y <= 16; y++) {
    for (let x = 1; x <= 24; x++) {
      image.setPixelAt(x, y, Image.rgbToColor(x * 10, y * 15, (x * y) % 256));
    }
  }
  return image;
}

Deno.test("DecodePool.decode() gives the bytes readImage() gives for PNG and JPEG files", async () => {
  await withTemp(async (dir) => {
    const files: Record<string, Uint8Array> = {
      "rgb.png": await encodePng({
        width: 3,
        height: 2,
        data: Uint8Array.from({ length: 18 }, (_, i) => i * 13),
      }),
      "gray16.png": buildPng({
        width: 2,
        height: 1,
        colorType: 0,
        bitDepth: 16,
        samples: [0x1234, 0xfedc],
      }),
      "palette.png": buildPng({
        width: 2,
        height: 1,
        colorType: 3,
        bitDepth: 8,
        samples: [1, 0],
        palette: [10, 20, 30, 40, 50, 60],
      }),
      "rgba.png": await gradient().encode(1),
      "photo.jpg": await gradient().encodeJPEG(90),
      "gray.jpg": await new Image(8, 8).fill(0x808080ff).encodeJPEG(75),
    };
    for (const [name, bytes] of Object.entries(files)) {
      await Deno.writeFile(join(dir, name), bytes);
    }
    using pool = new DecodePool({ workers: 2 });
    const paths = Object.keys(files).map((name) => join(dir, name));
    const viaPool = await Promise.all(paths.map((p) => pool.decode(p)));
    for (let k = 0; k < paths.length; k++) {
      const expected = await readImage(paths[k]);
      assertEquals(
        [viaPool[k].width, viaPool[k].height],
        [expected.width, expected.height],
        paths[k],
      );
      assertEquals(viaPool[k].data, expected.data, paths[k]);
      assertTrue(viaPool[k].data instanceof Uint8Array);
    }
    // Hand-checked values, independent of readImage().
    assertEquals(Array.from(viaPool[1].data), [18, 18, 18, 254, 254, 254]);
    assertEquals(Array.from(viaPool[2].data), [40, 50, 60, 10, 20, 30]);
  });
});

Deno.test("DecodePool.decode() raises the DatasetError readImage() raises, naming the file", async () => {
  await withTemp(async (dir) => {
    const png = await encodePng({
      width: 8,
      height: 8,
      data: new Uint8Array(192).fill(7),
    });
    const jpeg = await gradient().encodeJPEG(90);
    const flipped = png.slice();
    flipped[60] ^= 0xff;
    const files: [string, Uint8Array | undefined][] = [
      ["empty.png", new Uint8Array(0)],
      ["text.jpg", new TextEncoder().encode("hello, not an image")],
      ["cut.png", png.subarray(0, png.length - 30)],
      ["no_iend.png", png.subarray(0, png.length - 12)],
      ["flipped.png", flipped],
      ["cut.jpg", jpeg.subarray(0, 200)],
      ["missing.png", undefined],
    ];
    using pool = new DecodePool({ workers: 1 });
    for (const [name, bytes] of files) {
      const path = join(dir, name);
      if (bytes) await Deno.writeFile(path, bytes);
      const expected = await assertRejects(() => readImage(path), DatasetError);
      const error = await assertRejects(() => pool.decode(path), DatasetError);
      assertEquals(error.message, expected.message);
      assertEquals(error.path, path);
      assertTrue(error.message.includes(name), error.message);
    }
    // A bad file does not stop the worker.
    await Deno.writeFile(join(dir, "ok.png"), png);
    assertEquals((await pool.decode(join(dir, "ok.png"))).width, 8);
  });
});

Deno.test("DecodePool keeps at most workers × maxInFlight requests in flight", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "a.png");
    await Deno.writeFile(path, await gradient().encode(1));
    using pool = new DecodePool({ workers: 2, maxInFlight: 2 });
    let maxInFlight = 0;
    const observe = () => {
      maxInFlight = Math.max(maxInFlight, pool.inFlight);
      assertEquals(pool.inFlight + pool.queued <= 20, true);
    };
    const requests = Array.from({ length: 20 }, () => {
      const p = pool.decode(path);
      observe();
      return p.then((image) => {
        observe();
        return image;
      });
    });
    assertEquals([pool.inFlight, pool.queued], [4, 16]);
    assertEquals(pool.running, 2, "requests spread over both workers");
    const images = await Promise.all(requests);
    assertEquals(images.length, 20);
    assertEquals(maxInFlight, 4);
    assertEquals([pool.inFlight, pool.queued], [0, 0]);
  });
});

Deno.test("DecodePool rejects the requests of a crashed worker instead of hanging", async () => {
  // All three go to one worker, so Deno prints the crash's trace only once.
  const pool = new DecodePool({
    workers: 1,
    maxInFlight: 3,
    workerUrl: new URL("./_test_crash_worker.ts", import.meta.url),
  });
  try {
    const results = await Promise.allSettled(
      ["a.png", "b.png", "c.png"].map((p) => pool.decode(p)),
    );
    for (const [k, r] of results.entries()) {
      assertEquals(r.status, "rejected");
      const reason = (r as PromiseRejectedResult).reason;
      assertTrue(!(reason instanceof DatasetError), "not a bad-file error");
      assertTrue(
        /decode worker failed .*simulated worker crash/.test(reason.message) &&
          reason.message.includes(["a.png", "b.png", "c.png"][k]),
        reason.message,
      );
    }
    assertEquals([pool.inFlight, pool.queued], [0, 0]);
  } finally {
    pool.close();
  }
});

Deno.test("DecodePool.close() rejects pending requests and later ones", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "a.png");
    await Deno.writeFile(path, await gradient().encode(1));
    const pool = new DecodePool({ workers: 1, maxInFlight: 1 });
    const pending = [pool.decode(path), pool.decode(path)];
    pool.close();
    for (const p of pending) await assertRejects(() => p, Error, "closed");
    await assertRejects(() => pool.decode(path), Error, "closed");
    assertEquals(pool.running, 0);
  });
});

Deno.test("DecodePool stops idle workers so a process that forgets close() exits", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "a.png");
    await Deno.writeFile(path, await gradient().encode(1));
    const pool = new DecodePool({ workers: 1, idleTimeoutMs: 20 });
    try {
      await pool.decode(path);
      assertEquals(pool.running, 1);
      await new Promise((r) => setTimeout(r, 200));
      assertEquals(pool.running, 0);
      // And restarts them on demand.
      assertEquals((await pool.decode(path)).width, 24);
    } finally {
      pool.close();
    }
  });
});

Deno.test("DecodePool checks its options", () => {
  for (const bad of [{ workers: 0 }, { maxInFlight: 1.5 }]) {
    let caught: unknown;
    try {
      new DecodePool(bad);
    } catch (error) {
      caught = error;
    }
    assertTrue(caught instanceof RangeError, JSON.stringify(bad));
  }
});

Deno.test("DecodePool lets a process exit after close(), or idle without it", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "a.png");
    await Deno.writeFile(path, await gradient().encode(1));
    const module = new URL("./decode_pool.ts", import.meta.url).href;
    for (const ending of ["pool.close();", "// no close()"]) {
      const script = `import { DecodePool } from ${JSON.stringify(module)};
const pool = new DecodePool({ workers: 2, idleTimeoutMs: 200 });
const image = await pool.decode(${JSON.stringify(path)});
console.log(image.width);
${ending}`;
      // Test sanitizers do not see workers, so this checks exiting directly.
      const started = performance.now();
      const { code, stdout } = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--ext=ts", script],
        cwd: new URL(".", import.meta.url),
        stdout: "piped",
        stderr: "inherit",
        signal: AbortSignal.timeout(30_000),
      }).output();
      const seconds = (performance.now() - started) / 1000;
      assertEquals(code, 0, ending);
      assertEquals(new TextDecoder().decode(stdout).trim(), "24");
      assertTrue(seconds < 30, `${ending}: exited after ${seconds} s`);
    }
  });
});
