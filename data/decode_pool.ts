/**
 * Reading and decoding image files in Deno workers, so that imagescript's
 * decoding (WASM, synchronous once started) runs beside the training step
 * instead of blocking it.
 *
 * Each worker runs `readImage`: the same checks, the same pixels and
 * the same {@linkcode DatasetError} messages as decoding on the main thread.
 * The pixels come back by transferring their buffer (no copy).
 *
 * @module
 */
import type { RgbImage } from "@scaling-vicreg/backend/image";
import { DatasetError } from "./decode.ts";
import type { DecodeReply, DecodeRequest } from "./_decode_protocol.ts";

/** Options of {@linkcode DecodePool}. */
export interface DecodePoolOptions {
  /**
   * Worker threads (≥ 1).
   * @default {defaultDecodeWorkers()}
   */
  workers?: number;
  /**
   * Requests sent to one worker at a time (≥ 1); the rest wait in the pool's
   * queue. Two keep a worker busy while its last result travels back.
   * @default {2}
   */
  maxInFlight?: number;
  /**
   * Milliseconds without requests after which the workers are stopped (and
   * restarted on the next request), so a process that never calls `close()`
   * still exits; `Infinity` keeps them.
   * @default {5000}
   */
  idleTimeoutMs?: number;
  /**
   * The worker module; it must answer like `_decode_worker.ts`.
   * @default {new URL("./_decode_worker.ts", import.meta.url)}
   */
  workerUrl?: string | URL;
}

/**
 * The decode workers to ask for when decoding should not block the caller:
 * one per core but the caller's, at least 1
 * (`max(1, navigator.hardwareConcurrency − 1)`).
 *
 * @example
 * ```ts
 * import { defaultDecodeWorkers } from "@scaling-vicreg/data/decode-pool";
 * console.log(defaultDecodeWorkers() >= 1); // true
 * ```
 *
 * @returns The worker count.
 */
export function defaultDecodeWorkers(): number {
  return Math.max(1, (globalThis.navigator?.hardwareConcurrency ?? 2) - 1);
}

/** Defaults of {@linkcode DecodePoolOptions}. */
export const DEFAULT_DECODE_POOL_OPTIONS: Readonly<
  Required<DecodePoolOptions>
> = Object.freeze({
  workers: defaultDecodeWorkers(),
  maxInFlight: 2,
  idleTimeoutMs: 5000,
  workerUrl: new URL("./_decode_worker.ts", import.meta.url).href,
});

interface Pending {
  path: string;
  resolve: (image: RgbImage) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker?: Worker;
  pending: Map<number, Pending>;
}

/**
 * A pool of Deno workers that read and decode JPEG/PNG files to RGB
 * (`[H, W, 3]` uint8). At most `workers × maxInFlight` requests are out at
 * once; later ones wait in order. Call `close()` when done: live workers keep
 * a process running (idle ones are stopped after `idleTimeoutMs`).
 *
 * @example
 * ```ts
 * import { DecodePool, encodePng } from "@scaling-vicreg/data";
 * const path = await Deno.makeTempFile({ suffix: ".png" });
 * await Deno.writeFile(path, await encodePng({ width: 1, height: 1, data: new Uint8Array([1, 2, 3]) }));
 * const pool = new DecodePool({ workers: 1 });
 * try {
 *   const image = await pool.decode(path);
 *   console.log(Array.from(image.data)); // [1, 2, 3]
 * } finally {
 *   pool.close();
 *   await Deno.remove(path);
 * }
 * ```
 */
export class DecodePool {
  /** Worker threads. */
  readonly workers: number;
  /** Requests one worker holds at a time. */
  readonly maxInFlight: number;
  #options: Required<DecodePoolOptions>;
  #slots: Slot[];
  #queue: { id: number; request: Pending }[] = [];
  #nextId = 0;
  #closed = false;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Makes a pool; workers start on the first request.
   *
   * @param options Workers, requests in flight per worker, idle timeout.
   */
  constructor(options?: DecodePoolOptions) {
    const o = { ...DEFAULT_DECODE_POOL_OPTIONS, ...options };
    for (const key of ["workers", "maxInFlight"] as const) {
      if (!Number.isInteger(o[key]) || o[key] < 1) {
        throw new RangeError(
          `Expected decode pool option "${key}" to be a positive integer: received ${
            o[key]
          }`,
        );
      }
    }
    if (!(o.idleTimeoutMs >= 0)) {
      throw new RangeError(
        `Expected decode pool option "idleTimeoutMs" to be ≥ 0: received ${o.idleTimeoutMs}`,
      );
    }
    this.#options = o;
    this.workers = o.workers;
    this.maxInFlight = o.maxInFlight;
    this.#slots = Array.from({ length: o.workers }, () => ({
      pending: new Map(),
    }));
  }

  /** Requests sent to workers and not yet answered. */
  get inFlight(): number {
    return this.#slots.reduce((n, s) => n + s.pending.size, 0);
  }

  /** Requests waiting for a free worker. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Workers currently running. */
  get running(): number {
    return this.#slots.filter((s) => s.worker !== undefined).length;
  }

  /**
   * Reads and decodes the image file at `path` in a worker.
   *
   * @param path The file.
   * @returns The image, `[H, W, 3]` uint8.
   * @throws {DatasetError} If the file cannot be read or decoded (the
   *   message and `path` are those of `readImage`).
   * @throws {Error} If the pool is closed or a worker crashes meanwhile.
   */
  decode(path: string): Promise<RgbImage> {
    if (this.#closed) {
      return Promise.reject(
        new Error(`Cannot decode ${path}: the decode pool is closed`),
      );
    }
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    return new Promise((resolve, reject) => {
      this.#queue.push({
        id: this.#nextId++,
        request: { path, resolve, reject },
      });
      this.#pump();
    });
  }

  /** Stops the workers; requests not yet answered are rejected. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    const orphans = [...this.#queue.map((q) => q.request)];
    this.#queue = [];
    for (const slot of this.#slots) {
      slot.worker?.terminate();
      slot.worker = undefined;
      orphans.push(...slot.pending.values());
      slot.pending.clear();
    }
    for (const p of orphans) {
      p.reject(
        new Error(
          `Cannot decode ${p.path}: the decode pool was closed before it finished`,
        ),
      );
    }
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #pump(): void {
    if (this.#closed) return;
    while (this.#queue.length > 0) {
      // The least busy worker with room, so work spreads over all of them.
      let best: Slot | undefined;
      for (const slot of this.#slots) {
        if (
          slot.pending.size < this.maxInFlight &&
          (best === undefined || slot.pending.size < best.pending.size)
        ) {
          best = slot;
        }
      }
      if (best === undefined) return;
      const { id, request } = this.#queue.shift()!;
      best.pending.set(id, request);
      const message: DecodeRequest = { id, path: request.path };
      this.#workerOf(best).postMessage(message);
    }
    if (this.inFlight === 0 && Number.isFinite(this.#options.idleTimeoutMs)) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = setTimeout(() => {
        this.#idleTimer = undefined;
        for (const slot of this.#slots) {
          slot.worker?.terminate();
          slot.worker = undefined;
        }
      }, this.#options.idleTimeoutMs);
    }
  }

  #workerOf(slot: Slot): Worker {
    if (slot.worker) return slot.worker;
    const worker = new Worker(this.#options.workerUrl, {
      type: "module",
      name: `decode worker ${this.#slots.indexOf(slot) + 1}`,
    });
    worker.onmessage = (event: MessageEvent<DecodeReply>) => {
      const reply = event.data;
      const p = slot.pending.get(reply.id);
      if (p === undefined) return;
      slot.pending.delete(reply.id);
      if (reply.ok) {
        p.resolve({
          width: reply.width,
          height: reply.height,
          data: new Uint8Array(reply.data),
        });
      } else if (reply.datasetError) {
        const cause = reply.cause === undefined
          ? undefined
          : { cause: new Error(reply.cause) };
        p.reject(new DatasetError(reply.message, p.path, cause));
      } else {
        p.reject(new Error(reply.message));
      }
      this.#pump();
    };
    const fail = (why: string) => {
      worker.terminate();
      if (slot.worker === worker) slot.worker = undefined;
      const lost = [...slot.pending.values()];
      slot.pending.clear();
      for (const p of lost) {
        p.reject(
          new Error(
            `Cannot decode ${p.path}: its decode worker failed (${why})`,
          ),
        );
      }
      // Later requests go to a fresh worker.
      this.#pump();
    };
    worker.onerror = (event: ErrorEvent) => {
      // Handled here: without this the error would also end the main thread.
      event.preventDefault();
      fail(event.message || "uncaught error");
    };
    worker.onmessageerror = () => fail("a reply could not be deserialized");
    slot.worker = worker;
    return worker;
  }
}
