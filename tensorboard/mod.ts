/**
 * TensorBoard event files written without TensorFlow: CRC-32C, TFRecord
 * framing, the protocol-buffer encoding of the `Event` messages a training
 * run logs (scalars, PNG images, Markdown text, session restarts), and
 * {@linkcode EventWriter}, which appends them to
 * `events.out.tfevents.<unix seconds>.<hostname>`. It imports no tensor
 * code and no other member.
 *
 * ```ts
 * import { EventWriter } from "@scaling-vicreg/tensorboard";
 * const dir = await Deno.makeTempDir();
 * const writer = await EventWriter.open(dir);
 * for (let step = 1; step <= 3; step++) {
 *   writer.scalar("train/loss", 1 / step, step);
 *   await writer.flush(); // one append per logged step
 * }
 * await writer.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export * from "./crc32c.ts";
export * from "./event.ts";
export * from "./tfrecord.ts";
export * from "./event_writer.ts";
