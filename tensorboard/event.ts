/**
 * The protocol-buffer encoding of TensorBoard's `Event` message and of the
 * parts of it a training run writes: `Summary` values (scalars, PNG images,
 * Markdown text for the text plugin), the file-version header and
 * `SessionLog` restarts. Field numbers are those of TensorBoard's
 * `tensorboard/compat/proto/event.proto`, `summary.proto`, `tensor.proto`
 * and `types.proto` (copies of TensorFlow's).
 *
 * @module
 */
import { ProtoWriter } from "./_protobuf_wire.ts";

/** A PNG (or other encoded) image of a `Summary.Image` value. */
export interface SummaryImage {
  /** Height in pixels. */
  height: number;
  /** Width in pixels. */
  width: number;
  /**
   * Channels, as `Summary.Image.colorspace`: 1 grey, 2 grey + alpha, 3 RGB,
   * 4 RGBA.
   */
  colorspace: 1 | 2 | 3 | 4;
  /** The encoded image file (PNG). */
  encoded: Uint8Array;
}

/**
 * One value of a `Summary`, under `tag` (slashes group tags in TensorBoard:
 * `train/loss`): a scalar (`simple_value`, stored as float32), an image, or
 * Markdown text (a rank-0 string tensor for the text plugin).
 */
export type SummaryValue =
  | { tag: string; scalar: number }
  | { tag: string; image: SummaryImage }
  | { tag: string; text: string };

/** `SessionLog.SessionStatus`: `start` is a (re)start of the writing job. */
export type SessionStatus = "start" | "stop" | "checkpoint";

/**
 * What an `Event` carries (its `what` oneof): the file-version header
 * (`"brain.Event:2"`), a summary, or a session status.
 */
export type EventContent =
  | { fileVersion: string }
  | { summary: readonly SummaryValue[] }
  | { sessionLog: SessionStatus };

/**
 * A TensorBoard `Event`: when (`wallTime`, seconds since the Unix epoch) and
 * at which training step it happened, and what it carries.
 */
export type TensorBoardEvent =
  & {
    /** Seconds since the Unix epoch (fractional). */
    wallTime: number;
    /** The global step, an integer ≥ 0. */
    step: number;
  }
  & EventContent;

/** `Event` field numbers (event.proto). */
const EVENT = {
  wallTime: 1,
  step: 2,
  fileVersion: 3,
  summary: 5,
  sessionLog: 7,
};
/** `Summary.value` (summary.proto). */
const SUMMARY_VALUE = 1;
/** `Summary.Value` field numbers (summary.proto). */
const VALUE = { tag: 1, simpleValue: 2, image: 4, tensor: 8, metadata: 9 };
/** `Summary.Image` field numbers (summary.proto). */
const IMAGE = { height: 1, width: 2, colorspace: 3, encoded: 4 };
/** `SummaryMetadata` and its `PluginData` (summary.proto). */
const METADATA = { pluginData: 1, dataClass: 4 };
const PLUGIN_DATA = { pluginName: 1 };
/** `DataClass.DATA_CLASS_TENSOR`: what the text plugin's values are. */
const DATA_CLASS_TENSOR = 2;
/** `TensorProto` field numbers (tensor.proto). */
const TENSOR = { dtype: 1, shape: 2, stringVal: 8 };
/** `DataType.DT_STRING` (types.proto). */
const DT_STRING = 7;
/** `SessionLog.status` and its enum (event.proto). */
const SESSION_LOG_STATUS = 1;
const SESSION_STATUS: Record<SessionStatus, number> = {
  start: 1,
  stop: 2,
  checkpoint: 3,
};

/**
 * The protocol-buffer bytes of `event` (`tensorboard.Event`). Fields at
 * their proto3 default are left out, as protobuf's own serializers do (a
 * step of 0 writes no step field), except the members of a oneof, which are
 * always written (a scalar of 0 is a value, not an absent one).
 *
 * @example
 * ```ts
 * import { encodeEvent } from "@scaling-vicreg/tensorboard/event";
 * const bytes = encodeEvent({
 *   wallTime: 1.5,
 *   step: 3,
 *   summary: [{ tag: "a", scalar: 0.5 }],
 * });
 * console.log(bytes.length); // 23
 * ```
 *
 * @param event The event.
 * @returns Its encoding.
 * @throws {RangeError} For a negative or fractional step, an empty tag, an
 * image size that is not a positive integer or an unknown colorspace.
 * @throws {TypeError} For an event that carries none of the three.
 */
export function encodeEvent(event: TensorBoardEvent): Uint8Array {
  checkStep(event.step);
  const w = new ProtoWriter();
  if (event.wallTime !== 0) w.double(EVENT.wallTime, event.wallTime);
  if (event.step !== 0) w.varint(EVENT.step, event.step);
  if ("fileVersion" in event) {
    w.string(EVENT.fileVersion, event.fileVersion);
  } else if ("summary" in event) {
    const summary = new ProtoWriter();
    for (const value of event.summary) {
      summary.bytes(SUMMARY_VALUE, encodeValue(value));
    }
    w.bytes(EVENT.summary, summary.finish());
  } else if ("sessionLog" in event) {
    const status = SESSION_STATUS[event.sessionLog];
    if (status === undefined) {
      throw new RangeError(
        `Expected a session status of start, stop or checkpoint: received ${
          JSON.stringify(event.sessionLog)
        }`,
      );
    }
    w.bytes(
      EVENT.sessionLog,
      new ProtoWriter().varint(SESSION_LOG_STATUS, status).finish(),
    );
  } else {
    throw new TypeError(
      "Expected an event with one of fileVersion, summary and sessionLog",
    );
  }
  return w.finish();
}

function checkStep(step: number): void {
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new RangeError(
      `Expected an event step that is an integer ≥ 0: received ${step}`,
    );
  }
}

/** One `Summary.Value`. */
function encodeValue(value: SummaryValue): Uint8Array {
  if (typeof value.tag !== "string" || value.tag === "") {
    throw new RangeError(
      `Expected a summary tag that is a non-empty string: received ${
        JSON.stringify(value.tag)
      }`,
    );
  }
  const w = new ProtoWriter().string(VALUE.tag, value.tag);
  if ("scalar" in value) {
    w.float(VALUE.simpleValue, value.scalar);
  } else if ("image" in value) {
    w.bytes(VALUE.image, encodeImage(value.tag, value.image));
  } else {
    // The text plugin's form (as `tf.summary.text`): a rank-0 DT_STRING
    // tensor, tagged for the plugin by its metadata.
    const tensor = new ProtoWriter()
      .varint(TENSOR.dtype, DT_STRING)
      .bytes(TENSOR.shape, new Uint8Array(0))
      .string(TENSOR.stringVal, value.text)
      .finish();
    const pluginData = new ProtoWriter()
      .string(PLUGIN_DATA.pluginName, "text")
      .finish();
    const metadata = new ProtoWriter()
      .bytes(METADATA.pluginData, pluginData)
      .varint(METADATA.dataClass, DATA_CLASS_TENSOR)
      .finish();
    w.bytes(VALUE.tensor, tensor).bytes(VALUE.metadata, metadata);
  }
  return w.finish();
}

/** One `Summary.Image`. */
function encodeImage(tag: string, image: SummaryImage): Uint8Array {
  for (const key of ["height", "width"] as const) {
    if (!Number.isInteger(image[key]) || image[key] < 1) {
      throw new RangeError(
        `Expected the ${key} of image "${tag}" to be a positive integer: received ${
          image[key]
        }`,
      );
    }
  }
  if (![1, 2, 3, 4].includes(image.colorspace)) {
    throw new RangeError(
      `Expected the colorspace of image "${tag}" to be 1, 2, 3 or 4: received ${image.colorspace}`,
    );
  }
  return new ProtoWriter()
    .varint(IMAGE.height, image.height)
    .varint(IMAGE.width, image.width)
    .varint(IMAGE.colorspace, image.colorspace)
    .bytes(IMAGE.encoded, image.encoded)
    .finish();
}
