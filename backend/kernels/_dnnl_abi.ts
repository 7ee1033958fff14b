/**
 * The part of oneDNN's v2 C API (oneDNN 2.x, `dnnl_types.h` and
 * `dnnl.h`) that the `blas` backend binds through Deno's FFI: enum values,
 * argument indices, buffer sizes and the symbol table for `Deno.dlopen`.
 *
 * @module
 */

/** `dnnl_f32`: the data type of every tensor outside a bf16 convolution. */
export const F32 = 3;
/**
 * `dnnl_bf16` (`dnnl_data_type_t` of 2.x: undef 0, f16 1, bf16 2, f32 3): a
 * bf16 convolution's inputs.
 */
export const BF16 = 2;
/** `dnnl_nhwc` (`dnnl_acdb`): channels-last activations. */
export const TAG_NHWC = 20;
/** `dnnl_hwio` (`dnnl_cdba`): a TF.js `[KH, KW, Ci, Co]` filter. */
export const TAG_HWIO = 30;
/** `dnnl_format_tag_any`: the primitive picks the layout. */
export const TAG_ANY = 1;
/** `dnnl_cpu`: the engine kind. */
export const CPU = 1;
/** `dnnl_stream_in_order`: the stream flag. */
export const STREAM_IN_ORDER = 1;
/** `dnnl_forward_training`: the propagation kind. */
export const FORWARD_TRAINING = 64;
/** `dnnl_forward_inference`: the propagation kind. */
export const FORWARD_INFERENCE = 96;
/** `dnnl_a`: a plain vector. */
export const TAG_A = 2;
/** `dnnl_eltwise_relu`: the post-op algorithm. */
export const ELTWISE_RELU = 31;
/** `DNNL_ARG_BIAS`. */
export const ARG_BIAS = 41;
/** `dnnl_convolution_direct` (never Winograd). */
export const CONVOLUTION_DIRECT = 1;
/** `dnnl_pooling_max`: the pooling algorithm. */
export const POOLING_MAX = 0x1ff;
/** `dnnl_ab`: a plain row-major matrix. */
export const TAG_AB = 3;
/** `dnnl_binary_add` … `dnnl_binary_sub`: the binary algorithms. */
export const BINARY_ALGS = {
  add: 0x1fff0,
  mul: 0x1fff1,
  max: 0x1fff2,
  min: 0x1fff3,
  div: 0x1fff4,
  sub: 0x1fff5,
} as const;
/** `dnnl_eltwise_relu`, `_square`, `_sqrt`, `_linear`: element-wise algorithms. */
export const ELTWISE_ALGS = {
  relu: 0x1f,
  square: 0x4f,
  sqrt: 0x6f,
  linear: 0x7f,
} as const;
/** `DNNL_ARG_SRC_1`: a binary primitive's second input (the first is `DNNL_ARG_SRC`). */
export const ARG_SRC_1 = 2;
/** `DNNL_ARG_SRC`. */
export const ARG_SRC = 1;
/** `DNNL_ARG_DST`. */
export const ARG_DST = 17;
/** `DNNL_ARG_WEIGHTS`. */
export const ARG_WEIGHTS = 33;
/** `DNNL_ARG_DIFF_SRC`. */
export const ARG_DIFF_SRC = 129;
/** `DNNL_ARG_DIFF_DST`. */
export const ARG_DIFF_DST = 145;
/** `DNNL_ARG_DIFF_WEIGHTS`. */
export const ARG_DIFF_WEIGHTS = 161;
/** `dnnl_query_impl_info_str`: the implementation's name. */
export const QUERY_IMPL_INFO = 8;
/** `dnnl_query_primitive_kind`: a primitive's kind (`dnnl_primitive_kind_t`). */
export const QUERY_PRIMITIVE_KIND = 2;
/** `dnnl_query_weights_md`. */
export const QUERY_WEIGHTS_MD = 131;
/** `dnnl_query_diff_weights_md`. */
export const QUERY_DIFF_WEIGHTS_MD = 132;
/** `dnnl_query_workspace_md`. */
export const QUERY_WORKSPACE_MD = 135;
/** `dnnl_backward`: the propagation kind. */
export const BACKWARD = 128;
/** `dnnl_use_scale`: batch normalisation with γ. */
export const USE_SCALE = 0x8;
/** `dnnl_use_shift`: batch normalisation with β. */
export const USE_SHIFT = 0x10;
/** `dnnl_fuse_norm_relu`: batch normalisation + ReLU. */
export const FUSE_NORM_RELU = 0x4;
/** `DNNL_ARG_MEAN`. */
export const ARG_MEAN = 49;
/** `DNNL_ARG_VARIANCE`. */
export const ARG_VARIANCE = 50;
/** `DNNL_ARG_SCALE`. */
export const ARG_SCALE = 51;
/** `DNNL_ARG_SHIFT`. */
export const ARG_SHIFT = 52;
/** `DNNL_ARG_WORKSPACE`. */
export const ARG_WORKSPACE = 64;
/** `DNNL_ARG_DIFF_SCALE`. */
export const ARG_DIFF_SCALE = 255;
/** `DNNL_ARG_DIFF_SHIFT`. */
export const ARG_DIFF_SHIFT = 256;
/** `sizeof(dnnl_memory_desc_t)` is 696 in 2.x; room to spare. */
export const MD_BYTES = 2048;
/** `sizeof(dnnl_convolution_desc_t)` is 5976 in 2.x; room to spare. */
export const OP_DESC_BYTES = 16384;
/** `DNNL_MAX_NDIMS`: the length of a `dnnl_dims_t`. */
export const MAX_DIMS = 12;

/** The functions bound, for `Deno.dlopen` (the optional ones are 2.x only). */
export const DNNL_SYMBOLS = {
  dnnl_version: { parameters: [], result: "pointer" },
  dnnl_engine_create: {
    parameters: ["buffer", "i32", "usize"],
    result: "i32",
  },
  dnnl_stream_create: {
    parameters: ["buffer", "pointer", "u32"],
    result: "i32",
  },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_desc_init_by_tag: {
    parameters: ["buffer", "i32", "buffer", "i32", "i32"],
    result: "i32",
    optional: true,
  },
  dnnl_memory_desc_equal: {
    parameters: ["buffer", "pointer"],
    result: "i32",
  },
  dnnl_memory_desc_get_size: { parameters: ["pointer"], result: "usize" },
  dnnl_convolution_forward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "pointer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
    optional: true,
  },
  dnnl_convolution_backward_data_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
    optional: true,
  },
  dnnl_batch_normalization_forward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "f32", "u32"],
    result: "i32",
    optional: true,
  },
  dnnl_batch_normalization_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "u32"],
    result: "i32",
    optional: true,
  },
  dnnl_convolution_backward_weights_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "pointer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
    optional: true,
  },
  dnnl_binary_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer"],
    result: "i32",
    optional: true,
  },
  dnnl_eltwise_forward_desc_init: {
    parameters: ["buffer", "i32", "i32", "buffer", "f32", "f32"],
    result: "i32",
    optional: true,
  },
  dnnl_eltwise_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "f32"],
    result: "i32",
    optional: true,
  },
  dnnl_pooling_v2_forward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
    optional: true,
  },
  dnnl_pooling_v2_backward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
    optional: true,
  },
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
    optional: true,
  },
  dnnl_primitive_attr_create: { parameters: ["buffer"], result: "i32" },
  dnnl_primitive_attr_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_post_ops_create: { parameters: ["buffer"], result: "i32" },
  dnnl_post_ops_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_post_ops_append_eltwise: {
    parameters: ["pointer", "f32", "i32", "f32", "f32"],
    result: "i32",
  },
  dnnl_primitive_attr_set_post_ops: {
    parameters: ["pointer", "pointer"],
    result: "i32",
  },
  dnnl_reorder_primitive_desc_create: {
    parameters: [
      "buffer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  dnnl_primitive_desc_query: {
    parameters: ["pointer", "i32", "i32", "buffer"],
    result: "i32",
  },
  dnnl_primitive_desc_query_md: {
    parameters: ["pointer", "i32", "i32"],
    result: "pointer",
  },
  dnnl_primitive_create: { parameters: ["buffer", "pointer"], result: "i32" },
  dnnl_primitive_get_primitive_desc: {
    parameters: ["pointer", "buffer"],
    result: "i32",
    optional: true,
  },
  dnnl_memory_create: {
    parameters: ["buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_memory_set_data_handle: {
    parameters: ["pointer", "buffer"],
    result: "i32",
  },
  dnnl_primitive_execute: {
    parameters: ["pointer", "pointer", "i32", "buffer"],
    result: "i32",
  },
} as const;

/** The bound symbols of an opened oneDNN. */
export type DnnlSymbols = Deno.DynamicLibrary<typeof DNNL_SYMBOLS>["symbols"];
