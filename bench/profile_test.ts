import { assertEquals } from "@scaling-vicreg/backend/testing";
import type { KernelProfile } from "@scaling-vicreg/backend/kernel-profile";
import { profileRows } from "./profile.ts";

const kernel = (
  calls: number,
  selfMs: number,
  nativeMs = 0,
  nativeCalls = 0,
) => ({
  calls,
  totalMs: selfMs,
  selfMs,
  nativeMs,
  nativeCalls,
});

Deno.test("profileRows() gives per-step rows by category, native work and the time outside kernels", () => {
  // Two steps of 10 ms each (20 ms profiled); figures chosen by hand.
  const profile: KernelProfile = {
    backend: "blas",
    wallMs: 20,
    kernels: {
      Conv2D: kernel(4, 6, 5, 2),
      FusedConv2D: kernel(2, 2, 0.5, 4),
      Relu: kernel(2, 1),
    },
    native: {
      "dnnl_primitive_execute:convolution": { calls: 2, ms: 5 },
      dnnl_memory_set_data_handle: { calls: 4, ms: 0.5 },
    },
  };
  const rows = profileRows(profile, 2, 10);
  const byLabel = Object.fromEntries(
    rows.map((r) => [r.label, [r.calls, r.ms, r.percent]]),
  );
  assertEquals(byLabel, {
    // (4 + 2) calls, (6 + 2) ms over 2 steps of 10 ms.
    "conv forward": [3, 4, 40],
    // A kernel no category names is element-wise.
    "element-wise": [1, 0.5, 5],
    "all kernels (self time)": [0, 4.5, 45],
    "  native: oneDNN convolution": [1, 2.5, 25],
    "  native: other FFI calls (handles, waits, threads)": [2, 0.25, 2.5],
    // Kernels' self time (9 ms) less their native time (5.5 ms), per step.
    "  kernels' own JavaScript / wasm (self − native)": [0, 1.75, 17.5],
    "FFI crossings (all native calls)": [3, 0, 0],
    // 20 ms of steps less 9 ms inside kernels.
    "outside kernels: TF.js engine, tape, model JS": [0, 5.5, 55],
  });
});
