import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "./backend.ts";
import { leanTape } from "./lean_tape.ts";
import { assertClose, assertEquals, assertTrue } from "./testing.ts";

await useBackend("cpu");

/**
 * A 12-layer chain `relu(h·wᵢ + 0.01)` on a [64, 256] input with a probe
 * near the bottom whose gradient records the live bytes when the backward pass
 * reaches it (every layer above is done by then).
 */
function chain(
  ws: tf.Variable[],
  x: tf.Tensor,
  lean: boolean,
): { grads: Float32Array[]; bytesAtBottom: number } {
  let bytesAtBottom = 0;
  const probe = tf.customGrad(
    ((a: tf.Tensor) => ({
      value: tf.clone(a),
      gradFunc: (dy: tf.Tensor) => {
        bytesAtBottom = tf.memory().numBytes;
        return tf.clone(dy);
      },
    })) as unknown as Parameters<typeof tf.customGrad>[0],
  );
  const forward = () => {
    // The probe sits after the first layer: its gradient is needed for ws[0].
    let h = probe(tf.mul(x, ws[0]));
    for (const w of ws.slice(1)) h = tf.relu(tf.add(tf.mul(h, w), 0.01));
    return tf.sum(tf.square(h)) as tf.Scalar;
  };
  const { value, grads } = tf.variableGrads(
    () => lean ? leanTape(forward) : forward(),
    ws,
  );
  const out = ws.map((w) => grads[w.name].dataSync() as Float32Array);
  tf.dispose([value, ...Object.values(grads)]);
  return { grads: out, bytesAtBottom };
}

Deno.test("leanTape() gives the same gradients and frees upstream gradients during backprop", () => {
  const x = tf.randomNormal([64, 256], 0, 1, "float32", 1);
  const ws = Array.from(
    { length: 12 },
    (_, i) => tf.variable(tf.randomUniform([256], 0.9, 1.1, "float32", i)),
  );
  const before = tf.memory().numTensors;
  const plain = chain(ws, x, false);
  const lean = chain(ws, x, true);
  plain.grads.forEach((g, i) => assertClose(lean.grads[i], g, { rtol: 0 }));
  // 12 layers × (mul, add, relu outputs' gradients + saved tensors) of
  // 64 KiB each stay alive without leanTape; with it, only a few do.
  const layer = 64 * 256 * 4;
  assertTrue(
    plain.bytesAtBottom - lean.bytesAtBottom > 20 * layer,
    `expected far fewer live bytes: ${plain.bytesAtBottom} vs ${lean.bytesAtBottom}`,
  );
  assertEquals(tf.memory().numTensors, before);
  tf.dispose([x, ...ws]);
});

Deno.test("leanTape() never frees the caller's dy, and passes through without a tape", () => {
  const x = tf.tensor1d([1, -2, 3]);
  const dy = tf.tensor1d([1, 1, 2]);
  const [g] = tf.engine().gradients(
    () => leanTape(() => tf.relu(tf.mul(x, 2))),
    [x],
    dy,
  ).grads;
  assertClose(g, [2, 0, 4]);
  assertEquals(dy.isDisposed, false);
  const y = leanTape(() => tf.add(x, 1));
  assertClose(y, [2, -1, 4]);
  tf.dispose([x, dy, g, y]);
});
