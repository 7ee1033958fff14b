/**
 * Fused colour kernels for the host-memory backends (`cpu-fast`, `wasm`,
 * `blas`):
 *
 * - {@linkcode ADJUST_HUE_KERNEL}: RGB → HSV, shift, HSV → RGB in one pass
 *   over the pixels, where the same work as tensor ops takes ~40 element-wise
 *   kernels;
 * - {@linkcode COLOR_JITTER_KERNEL}: torchvision's `ColorJitter` with
 *   per-image factors and op order, on the whole batch in one kernel instead
 *   of sixteen (four stages × four ops) uploads and read-backs.
 *
 * `@scaling-vicreg/augment` runs them when the active backend has them and
 * falls back to tensor ops elsewhere (`cpu`, the untouched reference, and the
 * GPU backends); tests check both paths against each other and torchvision.
 *
 * @module
 */
import { registerHostKernel } from "./_host.ts";

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
      // torchvision clamps p, q, t to [0, 1] (in range for v, s in [0, 1]).
      let p = v * (1 - s);
      let q = v * (1 - s * f);
      let t = v * (1 - s * (1 - f));
      p = p < 0 ? 0 : p > 1 ? 1 : p;
      q = q < 0 ? 0 : q > 1 ? 1 : q;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
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

/**
 * Name of the colour-jitter kernel: inputs `x` (`[N, H, W, 3]` float32 in
 * [0, 1]) and `params` (`[N, 9]` float32 rows `applied (0/1), order₀..order₃
 * (0 brightness, 1 contrast, 2 saturation, 3 hue), brightness, contrast,
 * saturation, hue`); attribute `luma` (three weights); output like `x`.
 */
export const COLOR_JITTER_KERNEL = "VicregColorJitter";

/**
 * torchvision's `ColorJitter` on each image whose `applied` is 1, its four
 * ops in the image's own order: brightness `clamp(f·x)`, contrast
 * `clamp(f·x + (1 − f)·mean(luma))`, saturation `clamp(f·x + (1 − f)·luma)`,
 * hue as {@linkcode adjustHuePixels}. Arithmetic in float64, stored as
 * float32.
 *
 * @param x `[N·H·W·3]` RGB in [0, 1].
 * @param params `[N·9]`, see {@linkcode COLOR_JITTER_KERNEL}.
 * @param pixelsPerImage `H·W`.
 * @param luma The luma weights of contrast and saturation.
 * @param out Written, same length as `x` (may be `x` itself).
 */
export function colorJitterPixels(
  x: Float32Array,
  params: Float32Array,
  pixelsPerImage: number,
  luma: readonly [number, number, number],
  out: Float32Array,
): void {
  const [wr, wg, wb] = luma;
  const per = pixelsPerImage * 3;
  const n = params.length / 9;
  if (out !== x) out.set(x);
  const shift = new Float32Array(1);
  for (let i = 0; i < n; i++) {
    const p = params.subarray(i * 9, i * 9 + 9);
    if (p[0] === 0) continue;
    const img = out.subarray(i * per, (i + 1) * per);
    for (let stage = 0; stage < 4; stage++) {
      const op = p[1 + stage];
      const f = p[5 + op];
      if (op === 0) {
        for (let j = 0; j < per; j++) {
          const y = f * img[j];
          img[j] = y < 0 ? 0 : y > 1 ? 1 : y;
        }
      } else if (op === 1) {
        let sum = 0;
        for (let j = 0; j < per; j += 3) {
          sum += wr * img[j] + wg * img[j + 1] + wb * img[j + 2];
        }
        const base = (1 - f) * (sum / pixelsPerImage);
        for (let j = 0; j < per; j++) {
          const y = f * img[j] + base;
          img[j] = y < 0 ? 0 : y > 1 ? 1 : y;
        }
      } else if (op === 2) {
        for (let j = 0; j < per; j += 3) {
          const gray = (1 - f) *
            (wr * img[j] + wg * img[j + 1] + wb * img[j + 2]);
          const r = f * img[j] + gray;
          const g = f * img[j + 1] + gray;
          const b = f * img[j + 2] + gray;
          img[j] = r < 0 ? 0 : r > 1 ? 1 : r;
          img[j + 1] = g < 0 ? 0 : g > 1 ? 1 : g;
          img[j + 2] = b < 0 ? 0 : b > 1 ? 1 : b;
        }
      } else {
        shift[0] = f;
        adjustHuePixels(img, shift, pixelsPerImage, img);
      }
    }
  }
}

/**
 * Name of the per-channel affine kernel: input `x` (float32, channels last);
 * attributes `scale` and `shift` (one number per channel); output
 * `x · scale[c] + shift[c]`, like `x` (`Normalize` is one).
 */
export const CHANNEL_AFFINE_KERNEL = "VicregChannelAffine";

/**
 * Registers {@linkcode ADJUST_HUE_KERNEL}, {@linkcode COLOR_JITTER_KERNEL}
 * and {@linkcode CHANNEL_AFFINE_KERNEL} for a host-memory backend (once;
 * `registerAugmentKernels` in `augment_kernels.ts` is the entry point).
 *
 * @param backendName A cpu-style or wasm-style TF.js backend.
 */
export function registerColorKernels(backendName: string): void {
  registerHostKernel(ADJUST_HUE_KERNEL, backendName, (inputs, _, host) => {
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
    const out = host.alloc(x.shape);
    adjustHuePixels(
      host.view(x),
      host.view(shifts),
      x.shape[1] * x.shape[2],
      host.view(out),
    );
    return out;
  });
  registerHostKernel(
    CHANNEL_AFFINE_KERNEL,
    backendName,
    (inputs, attrs, host) => {
      const { x } = inputs;
      const scale = attrs.scale as number[] | undefined;
      const shift = attrs.shift as number[] | undefined;
      const c = x?.shape[x.shape.length - 1];
      if (
        x === undefined || x.dtype !== "float32" || scale === undefined ||
        shift === undefined || scale.length !== c || shift.length !== c
      ) {
        throw new TypeError(
          `${CHANNEL_AFFINE_KERNEL}: expected float32 x and one scale and shift per channel`,
        );
      }
      const out = host.alloc(x.shape);
      const xv = host.view(x);
      const ov = host.view(out);
      for (let ch = 0; ch < c; ch++) {
        const a = scale[ch], b = shift[ch];
        for (let i = ch; i < xv.length; i += c) ov[i] = xv[i] * a + b;
      }
      return out;
    },
  );
  registerHostKernel(
    COLOR_JITTER_KERNEL,
    backendName,
    (inputs, attrs, host) => {
      const { x, params } = inputs;
      const luma = attrs.luma as number[] | undefined;
      if (
        x === undefined || params === undefined || x.shape.length !== 4 ||
        x.shape[3] !== 3 || x.dtype !== "float32" ||
        params.shape.length !== 2 || params.shape[0] !== x.shape[0] ||
        params.shape[1] !== 9 || params.dtype !== "float32" ||
        luma === undefined || luma.length !== 3
      ) {
        throw new TypeError(
          `${COLOR_JITTER_KERNEL}: expected x float32 [N, H, W, 3], params float32 [N, 9] and luma [3]`,
        );
      }
      const out = host.alloc(x.shape);
      colorJitterPixels(
        host.view(x),
        host.view(params),
        x.shape[1] * x.shape[2],
        luma as [number, number, number],
        host.view(out),
      );
      return out;
    },
  );
}
