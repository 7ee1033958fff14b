/**
 * A fused hue-shift kernel for the host-memory backends (`cpu-fast`, `wasm`,
 * `blas`): RGB → HSV, shift, HSV → RGB in one pass over the pixels, where the
 * same work written as tensor ops takes ~40 element-wise kernels.
 *
 * `@scaling-vicreg/augment`'s `adjustHue` runs it when the active backend
 * has it and falls back to tensor ops elsewhere (`cpu`, the untouched
 * reference, and the GPU backends).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { hostFor } from "./_host.ts";

/**
 * Name of the kernel: inputs `x` (`[N, H, W, 3]` float32 in [0, 1]) and
 * `shifts` (`[N]` float32, hue shifts in [−0.5, 0.5]); output like `x`.
 */
export const ADJUST_HUE_KERNEL = "VicregAdjustHue";

/**
 * torchvision's `adjust_hue` for float images, per pixel: `_rgb2hsv`, the
 * hue shifted modulo 1, `_hsv2rgb` (its six-way choice among v, p, q, t).
 * Arithmetic in float64, stored as float32.
 *
 * @param x `[N·H·W·3]` RGB in [0, 1].
 * @param shifts One shift per image.
 * @param pixelsPerImage `H·W`.
 * @param out Written, same length as `x`.
 */
export function adjustHuePixels(
  x: Float32Array,
  shifts: Float32Array,
  pixelsPerImage: number,
  out: Float32Array,
): void {
  for (let n = 0; n < shifts.length; n++) {
    const shift = shifts[n];
    const end = (n + 1) * pixelsPerImage * 3;
    for (let i = n * pixelsPerImage * 3; i < end; i += 3) {
      const r = x[i], g = x[i + 1], b = x[i + 2];
      const v = Math.max(r, g, b);
      const cr = v - Math.min(r, g, b);
      let h = 0;
      let s = 0;
      if (cr !== 0) {
        // torchvision divides by 1 instead where max == min; h, s are 0 then.
        s = cr / v;
        const rc = (v - r) / cr, gc = (v - g) / cr, bc = (v - b) / cr;
        const hh = v === r ? bc - gc : v === g ? 2 + rc - bc : 4 + gc - rc;
        h = hh / 6 + 1;
        h -= Math.floor(h);
      }
      h += shift;
      h -= Math.floor(h);
      const h6 = h * 6;
      const k = Math.floor(h6);
      const f = h6 - k;
      const p = clamp01(v * (1 - s));
      const q = clamp01(v * (1 - s * f));
      const t = clamp01(v * (1 - s * (1 - f)));
      switch (k % 6) {
        case 0:
          out[i] = v, out[i + 1] = t, out[i + 2] = p;
          break;
        case 1:
          out[i] = q, out[i + 1] = v, out[i + 2] = p;
          break;
        case 2:
          out[i] = p, out[i + 1] = v, out[i + 2] = t;
          break;
        case 3:
          out[i] = p, out[i + 1] = q, out[i + 2] = v;
          break;
        case 4:
          out[i] = t, out[i + 1] = p, out[i + 2] = v;
          break;
        default:
          out[i] = v, out[i + 1] = p, out[i + 2] = q;
      }
    }
  }
}

function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/**
 * Registers {@linkcode ADJUST_HUE_KERNEL} for a host-memory backend (once).
 *
 * @example
 * ```ts ignore
 * import { registerColorKernels } from "@scaling-vicreg/backend/color-kernels";
 * registerColorKernels("wasm");
 * ```
 *
 * @param backendName A cpu-style or wasm-style TF.js backend.
 */
export function registerColorKernels(backendName: string): void {
  if (tf.getKernel(ADJUST_HUE_KERNEL, backendName) !== undefined) return;
  tf.registerKernel({
    kernelName: ADJUST_HUE_KERNEL,
    backendName,
    kernelFunc: ({ inputs, backend }) => {
      const { x, shifts } = inputs;
      if (
        x === undefined || shifts === undefined || x.shape.length !== 4 ||
        x.shape[3] !== 3 || x.dtype !== "float32" ||
        shifts.shape.length !== 1 || shifts.shape[0] !== x.shape[0] ||
        shifts.dtype !== "float32"
      ) {
        throw new TypeError(
          `${ADJUST_HUE_KERNEL}: expected x float32 [N, H, W, 3] and shifts float32 [N]`,
        );
      }
      const host = hostFor(backend, backendName);
      const out = host.alloc(x.shape);
      adjustHuePixels(
        host.view(x),
        host.view(shifts),
        x.shape[1] * x.shape[2],
        host.view(out),
      );
      return out;
    },
  });
}
