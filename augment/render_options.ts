/**
 * The options of rendering views ({@linkcode RenderOptions}, used by
 * `renderViews` and its device and host paths) and their defaults.
 *
 * @module
 */
import type { BlurOptions } from "./blur.ts";
import { IMAGENET_MEAN, IMAGENET_STD, LUMA_ITU_R_601 } from "./color.ts";

/** Options of {@linkcode renderViews}. */
export interface RenderOptions {
  /**
   * Output side S (views are `S × S`).
   * @default {96}
   */
  size?: number;
  /**
   * Luma weights for grayscale, contrast and saturation.
   * @default {LUMA_ITU_R_601}
   */
  luma?: readonly [number, number, number];
  /**
   * The blur kernel.
   * @default {"pil"}
   */
  blurMethod?: BlurOptions["method"];
  /**
   * Solarization threshold (pixels ≥ it are inverted).
   * @default {0.5}
   */
  solarizeThreshold?: number;
  /**
   * Normalisation means; `null` skips normalisation (views stay in [0, 1]).
   * @default {IMAGENET_MEAN}
   */
  mean?: readonly [number, number, number] | null;
  /**
   * Normalisation standard deviations.
   * @default {IMAGENET_STD}
   */
  std?: readonly [number, number, number];
}

/** Defaults of {@linkcode RenderOptions}. */
export const DEFAULT_RENDER_OPTIONS: Required<RenderOptions> = {
  size: 96,
  luma: LUMA_ITU_R_601,
  blurMethod: "pil",
  solarizeThreshold: 0.5,
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
};
