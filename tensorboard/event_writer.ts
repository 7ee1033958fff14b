/**
 * {@linkcode EventWriter}: a TensorBoard event file
 * (`events.out.tfevents.<unix seconds>.<hostname>`) of scalars, images,
 * text and session restarts, appended whole record by whole record.
 *
 * @module
 */
import { encodeEvent, type EventContent, type SummaryValue } from "./event.ts";
import { encodeRecord } from "./tfrecord.ts";
import { readPngHeader } from "./_png_header.ts";

/** The version header every event file starts with (event.proto). */
export const EVENT_FILE_VERSION = "brain.Event:2";

/** Options of {@linkcode EventWriter.open}: the clock and host name. */
export interface EventWriterOptions {
  /**
   * The clock, in milliseconds since the Unix epoch: each event's wall time,
   * and the file name's seconds.
   * @default {() => Date.now()}
   */
  now?: () => number;
  /**
   * The host name in the file name (characters other than letters, digits,
   * `.`, `_` and `-` become `_`).
   * @default {() => Deno.hostname()}
   */
  hostname?: () => string;
  /**
   * Appended to the file name (TensorFlow's `filename_suffix`), e.g.
   * `.probe`, so that a program can tell its own files apart.
   * @default {""}
   */
  suffix?: string;
}

/** The defaults of {@linkcode EventWriterOptions}. */
export const DEFAULT_EVENT_WRITER_OPTIONS: Readonly<
  Required<EventWriterOptions>
> = Object.freeze({
  now: () => Date.now(),
  hostname: () => Deno.hostname(),
  suffix: "",
});

/** Tries at one second and host before giving up on a free name. */
const MAX_NAME_TRIES = 1000;

/**
 * Writes one TensorBoard event file: the `file_version` header first, then
 * the events logged. Logging only encodes and queues (`scalar`, `image`,
 * `text`, `sessionStart`); {@linkcode EventWriter.flush} appends what is
 * queued in one write, so call it once per logged step.
 *
 * Each writer opens a new file, never appending to an old one: a file that
 * a killed process left may end in a torn record, and TensorBoard's reader
 * stops at the first bad record of a file (moving on to the next file), so
 * records appended behind a torn one would be lost. A torn record is only
 * ever the last of its file: records are appended whole, in order, and a
 * failed write is cut back to the end of the last whole record.
 *
 * @example
 * ```ts
 * import { EventWriter } from "@scaling-vicreg/tensorboard/event-writer";
 * const dir = await Deno.makeTempDir();
 * const writer = await EventWriter.open(dir, { hostname: () => "example" });
 * writer.scalar("train/loss", 0.25, 1);
 * writer.text("config", "`epochs: 1`", 0);
 * await writer.flush();
 * await writer.close();
 * console.log(writer.path.includes("events.out.tfevents.")); // true
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class EventWriter {
  /** The event file's path. */
  readonly path: string;
  #file: Deno.FsFile;
  #now: () => number;
  #queue: Uint8Array[] = [];
  /** Bytes of whole records in the file. */
  #written = 0;
  /** The flush in progress, which the next one waits for. */
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(path: string, file: Deno.FsFile, now: () => number) {
    this.path = path;
    this.#file = file;
    this.#now = now;
  }

  /**
   * Creates `dir` if needed and a new event file in it, named
   * `events.out.tfevents.<unix seconds>.<hostname><suffix>` (with `.1`, `.2`,
   * … after it when that name is taken, so a restart within the second
   * opens a file that sorts after the old one, as TensorBoard reads them),
   * and writes the `file_version: "brain.Event:2"` header.
   *
   * @param dir The directory (a run directory: one TensorBoard "run").
   * @param options The clock and host name; see {@linkcode EventWriterOptions}.
   * @returns The open writer.
   */
  static async open(
    dir: string,
    options: EventWriterOptions = {},
  ): Promise<EventWriter> {
    const { now, hostname, suffix } = {
      ...DEFAULT_EVENT_WRITER_OPTIONS,
      ...options,
    };
    if (/[/\\]/.test(suffix)) {
      throw new RangeError(
        `Expected an event file name suffix without a path separator: received ${
          JSON.stringify(suffix)
        }`,
      );
    }
    await Deno.mkdir(dir, { recursive: true });
    const host = hostname().replace(/[^A-Za-z0-9._-]/g, "_") || "localhost";
    const opened = now();
    const base = `${dir}/events.out.tfevents.${
      Math.floor(opened / 1000)
    }.${host}`;
    for (let n = 0; n < MAX_NAME_TRIES; n++) {
      const path = `${base}${suffix}${n === 0 ? "" : `.${n}`}`;
      let file: Deno.FsFile;
      try {
        file = await Deno.open(path, { createNew: true, write: true });
      } catch (error) {
        if (error instanceof Deno.errors.AlreadyExists) continue;
        throw error;
      }
      const writer = new EventWriter(path, file, now);
      writer.#log({ fileVersion: EVENT_FILE_VERSION }, 0, opened);
      await writer.flush();
      return writer;
    }
    throw new Deno.errors.AlreadyExists(
      `${base}: this name and ${MAX_NAME_TRIES - 1} numbered ones are taken`,
    );
  }

  /**
   * The event file names in `dir` (sorted, as TensorBoard reads them)
   * opened with `suffix` (ending in it, or in it and a `.N` counter): all of
   * them for `""`.
   *
   * @param dir The directory.
   * @param suffix The name suffix files were opened with.
   * @returns File names (not paths); none when `dir` does not exist.
   */
  static async list(dir: string, suffix: string = ""): Promise<string[]> {
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        if (
          e.isFile && e.name.startsWith("events.out.tfevents.") &&
          e.name.replace(/\.\d+$/, "").endsWith(suffix)
        ) names.push(e.name);
      }
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [];
      throw error;
    }
    return names.sort();
  }

  /**
   * Queues a scalar (`Summary.Value.simple_value`, stored as float32).
   *
   * @param tag Its name; slashes group tags (`train/loss`).
   * @param value The value.
   * @param step The training step, an integer ≥ 0.
   */
  scalar(tag: string, value: number, step: number): void {
    this.#summary({ tag, scalar: value }, step);
  }

  /**
   * Queues a PNG image (`Summary.Image`; its width, height and colour space
   * are read from the PNG's header).
   *
   * @param tag Its name.
   * @param png The PNG file's bytes.
   * @param step The training step, an integer ≥ 0.
   * @throws {TypeError} When `png` is not a PNG file.
   */
  image(tag: string, png: Uint8Array, step: number): void {
    const { width, height, colorspace } = readPngHeader(png, `image "${tag}"`);
    this.#summary({
      tag,
      image: { width, height, colorspace, encoded: png },
    }, step);
  }

  /**
   * Queues Markdown text for TensorBoard's text plugin.
   *
   * @param tag Its name.
   * @param markdown The text (Markdown).
   * @param step The training step, an integer ≥ 0.
   */
  text(tag: string, markdown: string, step: number): void {
    this.#summary({ tag, text: markdown }, step);
  }

  /**
   * Queues a `SessionLog.START` at `step`: TensorBoard then drops the
   * events it has read at steps ≥ `step` (from this run's earlier files),
   * so the steps a resumed run trains again are shown once, from the new
   * file.
   *
   * @param step The first step this writer logs, an integer ≥ 0.
   */
  sessionStart(step: number): void {
    this.#log({ sessionLog: "start" }, step);
  }

  /**
   * Appends everything queued to the file in one write. A write that fails
   * is cut back to the last whole record before the error is thrown, so
   * the file never holds a torn record in front of later ones.
   *
   * @returns Resolves once the records are written.
   */
  flush(): Promise<void> {
    const bytes = concat(this.#queue.splice(0));
    const write = this.#writing.then(() => this.#append(bytes));
    // A failed flush is the caller's to see, not the next one's.
    this.#writing = write.catch(() => {});
    return write;
  }

  /**
   * Flushes what is queued and closes the file. Later calls do nothing.
   *
   * @returns Resolves once closed.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.flush();
    } finally {
      this.#closed = true;
      this.#file.close();
    }
  }

  /** {@linkcode EventWriter.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #summary(value: SummaryValue, step: number): void {
    this.#log({ summary: [value] }, step);
  }

  #log(what: EventContent, step: number, time: number = this.#now()): void {
    if (this.#closed) {
      throw new TypeError(`Event file ${this.path} is closed`);
    }
    const event = { wallTime: time / 1000, step, ...what };
    this.#queue.push(encodeRecord(encodeEvent(event)));
  }

  async #append(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    try {
      let done = 0;
      while (done < bytes.length) {
        done += await this.#file.write(bytes.subarray(done));
      }
      this.#written += bytes.length;
    } catch (error) {
      await this.#file.truncate(this.#written).catch(() => {});
      await this.#file.seek(this.#written, Deno.SeekMode.Start)
        .catch(() => {});
      throw error;
    }
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
