import { assertClose } from "../testing.ts";
import { adjustHuePixels } from "./color.ts";

Deno.test("adjustHuePixels() turns hues by hand-checked amounts and leaves greys alone", () => {
  const x = new Float32Array([
    1,
    0,
    0, // red
    1,
    0,
    0,
    0.5,
    0.5,
    0.5, // grey
    1,
    0.5,
    0, // orange, h = 1/12
    0,
    0,
    0, // black
    0.2,
    0.4,
    0.4, // tie between g and b: green wins, h = 1/2
  ]);
  const out = new Float32Array(x.length);
  // Images of one pixel each.
  adjustHuePixels(
    x,
    new Float32Array([1 / 3, -1 / 3, 0.25, 0.5, 0.5, 0.5]),
    1,
    out,
  );
  assertClose(out, [
    0,
    1,
    0, // red + 1/3 = green
    0,
    0,
    1, // red − 1/3 = blue
    0.5,
    0.5,
    0.5,
    0,
    0.5,
    1, // orange + 1/2 = azure (h = 7/12)
    0,
    0,
    0,
    0.4,
    0.2,
    0.2, // h = 0: red with v = 0.4, s = 0.5
  ], { atol: 1e-6 });
});
