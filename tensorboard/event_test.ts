import {
  assertEquals,
  assertThrows,
  ignoreUnless,
  pythonImports,
} from "@scaling-vicreg/backend/assert";
import { encodeEvent, type TensorBoardEvent } from "./event.ts";

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");

// Each expected encoding below is worked out by hand from the .proto field
// numbers: a key byte is (field << 3) | wire type (0 varint, 1 64-bit,
// 2 length-delimited, 5 32-bit).

Deno.test("encodeEvent() writes a scalar summary byte for byte", () => {
  const bytes = encodeEvent({
    wallTime: 1.5,
    step: 3,
    summary: [{ tag: "a", scalar: 0.5 }],
  });
  assertEquals(
    hex(bytes),
    [
      "09 00 00 00 00 00 00 f8 3f", // wall_time (1, double): 1.5 = 0x3ff8000000000000
      "10 03", // step (2, varint): 3
      "2a 0a", // summary (5, message) of 10 bytes
      "0a 08", //   value (1, message) of 8 bytes
      "0a 01 61", //     tag (1, string): "a"
      "15 00 00 00 3f", //     simple_value (2, float): 0.5 = 0x3f000000
    ].join(" "),
  );
});

Deno.test("encodeEvent() writes the file-version header, leaving out a zero time and step", () => {
  const bytes = encodeEvent({
    wallTime: 0,
    step: 0,
    fileVersion: "brain.Event:2",
  });
  // file_version (3, string) of 13 bytes.
  assertEquals(
    hex(bytes),
    "1a 0d " + hex(new TextEncoder().encode("brain.Event:2")),
  );
});

Deno.test("encodeEvent() writes a scalar of 0 (a oneof member is always written)", () => {
  const bytes = encodeEvent({
    wallTime: 0,
    step: 0,
    summary: [{ tag: "a", scalar: 0 }],
  });
  assertEquals(hex(bytes), "2a 0a 0a 08 0a 01 61 15 00 00 00 00");
});

Deno.test("encodeEvent() writes SessionLog.START as field 7", () => {
  const bytes = encodeEvent({ wallTime: 0, step: 5, sessionLog: "start" });
  // step 5; session_log (7, message) of 2 bytes: status (1, enum) START = 1.
  assertEquals(hex(bytes), "10 05 3a 02 08 01");
});

Deno.test("encodeEvent() writes text as a rank-0 string tensor for the text plugin", () => {
  const bytes = encodeEvent({
    wallTime: 0,
    step: 0,
    summary: [{ tag: "t", text: "hi" }],
  });
  assertEquals(
    hex(bytes),
    [
      "2a 1b", // summary (5) of 27 bytes
      "0a 19", //   value (1) of 25 bytes
      "0a 01 74", //     tag: "t"
      "42 08", //     tensor (8, TensorProto) of 8 bytes
      "08 07", //       dtype (1): DT_STRING = 7
      "12 00", //       tensor_shape (2): empty, rank 0
      "42 02 68 69", //       string_val (8): "hi"
      "4a 0a", //     metadata (9, SummaryMetadata) of 10 bytes
      "0a 06 0a 04 74 65 78 74", //       plugin_data (1) { plugin_name (1): "text" }
      "20 02", //       data_class (4): DATA_CLASS_TENSOR = 2
    ].join(" "),
  );
});

Deno.test("encodeEvent() writes an image with its size, colour space and bytes", () => {
  const bytes = encodeEvent({
    wallTime: 0,
    step: 0,
    summary: [{
      tag: "i",
      image: {
        height: 2,
        width: 3,
        colorspace: 3,
        encoded: Uint8Array.of(1, 2),
      },
    }],
  });
  assertEquals(
    hex(bytes),
    [
      "2a 11 0a 0f", // summary (5) of 17 bytes, its value (1) of 15
      "0a 01 69", // tag: "i"
      "22 0a", // image (4, Summary.Image) of 10 bytes
      "08 02 10 03 18 03", // height (1) 2, width (2) 3, colorspace (3) RGB = 3
      "22 02 01 02", // encoded_image_string (4)
    ].join(" "),
  );
});

Deno.test("encodeEvent() writes steps past 2^32 as 64-bit varints", () => {
  const bytes = encodeEvent({ wallTime: 0, step: 2 ** 32, sessionLog: "stop" });
  assertEquals(hex(bytes), "10 80 80 80 80 10 3a 02 08 02");
});

Deno.test("encodeEvent() refuses a negative step, an empty tag and a bad image", () => {
  assertThrows(
    () => encodeEvent({ wallTime: 0, step: -1, sessionLog: "start" }),
    RangeError,
    "step",
  );
  assertThrows(
    () =>
      encodeEvent({ wallTime: 0, step: 1, summary: [{ tag: "", scalar: 1 }] }),
    RangeError,
    "tag",
  );
  assertThrows(
    () =>
      encodeEvent({
        wallTime: 0,
        step: 1,
        summary: [{
          tag: "i",
          image: {
            height: 0,
            width: 3,
            colorspace: 3,
            encoded: new Uint8Array(),
          },
        }],
      }),
    RangeError,
    'height of image "i"',
  );
  assertThrows(
    () => encodeEvent({ wallTime: 0, step: 1 } as unknown as TensorBoardEvent),
    TypeError,
    "one of",
  );
});

// The same messages built by TensorBoard's own generated protobuf classes.
const TENSORBOARD = await pythonImports("tensorboard");

Deno.test({
  name:
    "encodeEvent() writes the bytes TensorBoard's protobuf classes serialize",
  ignore: ignoreUnless(
    TENSORBOARD,
    "tensorboard",
    "python3 cannot import tensorboard",
  ),
  async fn() {
    const events: TensorBoardEvent[] = [
      { wallTime: 1765000000.25, step: 0, fileVersion: "brain.Event:2" },
      {
        wallTime: 1.5,
        step: 3,
        summary: [{ tag: "train/loss", scalar: -0.1 }],
      },
      { wallTime: 2, step: 12345678901, sessionLog: "start" },
      { wallTime: 3, step: 7, summary: [{ tag: "c", text: "# héllo\n`x`" }] },
      {
        wallTime: 4,
        step: 1,
        summary: [{
          tag: "p",
          image: {
            height: 300,
            width: 2,
            colorspace: 4,
            encoded: Uint8Array.of(0, 255, 9),
          },
        }],
      },
    ];
    const script = `
import sys
from tensorboard.compat.proto import event_pb2, summary_pb2
def s(**kw): return summary_pb2.Summary(value=[summary_pb2.Summary.Value(**kw)])
text = summary_pb2.Summary.Value(tag="c")
text.tensor.dtype = 7
text.tensor.tensor_shape.SetInParent()
text.tensor.string_val.append("# héllo\\n\`x\`".encode())
text.metadata.plugin_data.plugin_name = "text"
text.metadata.data_class = summary_pb2.DATA_CLASS_TENSOR
image = summary_pb2.Summary.Image(height=300, width=2, colorspace=4, encoded_image_string=bytes([0, 255, 9]))
events = [
  event_pb2.Event(wall_time=1765000000.25, file_version="brain.Event:2"),
  event_pb2.Event(wall_time=1.5, step=3, summary=s(tag="train/loss", simple_value=-0.1)),
  event_pb2.Event(wall_time=2, step=12345678901, session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)),
  event_pb2.Event(wall_time=3, step=7, summary=summary_pb2.Summary(value=[text])),
  event_pb2.Event(wall_time=4, step=1, summary=s(tag="p", image=image)),
]
for e in events: print(e.SerializeToString().hex())
`;
    const out = await new Deno.Command("python3", { args: ["-c", script] })
      .output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    const expected = new TextDecoder().decode(out.stdout).trim().split("\n");
    assertEquals(
      events.map((e) => hex(encodeEvent(e)).replaceAll(" ", "")),
      expected,
    );
  },
});
