// The module run by each DecodePool worker: reads and decodes one file per
// request with readImage (the same checks and messages as on the main thread)
// and posts the RGB pixels back, transferring their buffer.
import { DatasetError, readImage } from "./decode.ts";
import type { DecodeReply, DecodeRequest } from "./_decode_protocol.ts";

// deno-lint-ignore no-explicit-any
const scope = self as any;

scope.onmessage = async (event: MessageEvent<DecodeRequest>) => {
  const { id, path } = event.data;
  let reply: DecodeReply;
  let transfer: ArrayBuffer[] = [];
  try {
    const image = await readImage(path);
    // A view over part of a larger buffer would transfer the whole buffer.
    const data = image.data.byteOffset === 0 &&
        image.data.byteLength === image.data.buffer.byteLength
      ? image.data
      : image.data.slice();
    reply = {
      id,
      ok: true,
      width: image.width,
      height: image.height,
      data: data.buffer as ArrayBuffer,
    };
    transfer = [reply.data];
  } catch (error) {
    const cause = error instanceof Error ? error.cause : undefined;
    reply = {
      id,
      ok: false,
      datasetError: error instanceof DatasetError,
      message: error instanceof Error ? error.message : String(error),
      cause: cause instanceof Error
        ? cause.message
        : cause === undefined
        ? undefined
        : String(cause),
    };
  }
  scope.postMessage(reply, transfer);
};
