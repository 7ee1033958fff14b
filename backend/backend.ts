/**
 * The tensor backend: {@linkcode useBackend} makes one TF.js's global active
 * backend, and is the only place in the project that imports a TF.js backend
 * package.
 *
 * Library members (`models`, `losses`, `augment`, `probe`) only use
 * `@tensorflow/tfjs-core` ops on whatever backend is active; the caller (a
 * script, `cli`) selects it once, globally, before any tensor is made.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { registerAugmentKernels } from "./kernels/augment_kernels.ts";
import { registerConvGradKernels } from "./kernels/conv_grad.ts";
import { registerKernelGradients } from "./gradients.ts";

/** Names of the backends this project knows how to load. */
export type BackendName =
  | "cpu"
  | "cpu-fast"
  | "wasm"
  | "blas"
  | "native"
  | "webgpu"
  | "tensorflow";

/**
 * Every backend name, fastest first: `auto`'s order of preference (it skips
 * `tensorflow`, which loads only when named).
 */
export const BACKEND_NAMES: readonly BackendName[] = [
  "tensorflow",
  "webgpu",
  "blas",
  "native",
  "wasm",
  "cpu-fast",
  "cpu",
];

/** What a `--backend` flag or `backend:` key accepts: `auto` or a name. */
export const BACKEND_CHOICES: readonly (BackendName | "auto")[] = [
  "auto",
  ...BACKEND_NAMES,
];

/** One line of help for a `--backend` flag. */
export const BACKEND_HELP =
  "Tensor backend; auto = the fastest that passes a self-test here (see `vicreg backends`)";

/**
 * Whether a backend keeps its tensors in the wasm heap (`wasm`, `blas`),
 * which stops at 4 GiB: training steps there back-propagate one view at a
 * time.
 *
 * @param name A TF.js backend name.
 * @returns Whether its tensors live in the wasm heap.
 */
export function usesWasmHeap(name: string): boolean {
  return name === "wasm" || name === "blas";
}

/** A tensor backend: its name, what it runs on, and an async initialiser. */
export interface TensorBackend {
  /** The TF.js backend name (`cpu`, `wasm`, `webgpu`, `tensorflow`). */
  readonly name: BackendName;
  /** What it runs on, in words (e.g. `pure JavaScript on the CPU`). */
  readonly device: string;
  /**
   * Loads the backend's package (lazily, with a dynamic `import()`), makes it
   * the active TF.js backend and resolves when it is ready.
   * Rejects with a {@linkcode BackendError} when it cannot be used here.
   */
  init(): Promise<void>;
}

/** What {@linkcode useBackend} chose. */
export interface BackendInfo {
  /** The active backend. */
  name: BackendName;
  /** What it runs on, in words. */
  device: string;
  /** Why `auto` picked it, or `requested` when it was named. */
  reason: string;
}

/** A backend that cannot be loaded or used on this machine. */
export class BackendError extends Error {
  /** The backend that failed. */
  readonly backend: string;
  /**
   * Makes a backend error.
   *
   * @param backend The backend's name.
   * @param message The one-line message.
   * @param options `cause` of the failure.
   */
  constructor(backend: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BackendError";
    this.backend = backend;
  }
}

let gradientsReady: Promise<void> | undefined;

/**
 * Registers the gradient functions of `GRADIENT_KERNELS` once.
 *
 * `@tensorflow/tfjs-core` alone registers none under Deno (its
 * `register_all_gradients.js` uses extension-less imports that Deno
 * rejects), so this project registers its own (`gradients.ts`).
 *
 * @returns A promise that resolves once gradients are registered.
 */
export function registerGradients(): Promise<void> {
  gradientsReady ??= (() => {
    // tfjs-backend-cpu prints a "use tfjs-node" banner under Node-like
    // runtimes unless PROD is set; it carries no information for us.
    tf.env().set("PROD", true);
    registerKernelGradients();
    return Promise.resolve();
  })();
  return gradientsReady;
}

async function activate(name: BackendName): Promise<void> {
  let ok: boolean;
  try {
    ok = await tf.setBackend(name);
    await tf.ready();
  } catch (cause) {
    throw new BackendError(
      name,
      `Backend "${name}" failed to initialise: ${errorText(cause)}`,
      { cause },
    );
  }
  if (!ok) {
    throw new BackendError(name, `Backend "${name}" failed to initialise`);
  }
}

function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0];
}

async function importOptional(specifier: string): Promise<unknown> {
  // A computed specifier keeps optional native packages out of the module
  // graph, so `deno check` and `deno publish` never try to install them.
  return await import(specifier);
}

/**
 * Asks for a WebGPU adapter. Mesa's Vulkan drivers print
 * "error: XDG_RUNTIME_DIR is invalid or not set" on every adapter request
 * when that variable is unset (servers, CI); they only need some private
 * runtime directory, so one is made for this process first.
 */
/** The user id, or undefined without `--allow-sys` (never prompts). */
function uid(): number | undefined {
  const query = { name: "sys", kind: "uid" } as const;
  if (Deno.permissions.querySync(query).state !== "granted") return undefined;
  return Deno.uid() ?? undefined;
}

async function requestAdapter(gpu: GPU): Promise<GPUAdapter | null> {
  try {
    if (Deno.build.os === "linux" && !Deno.env.get("XDG_RUNTIME_DIR")) {
      // One directory per user, reused by every process.
      const dir = `/tmp/vicreg-runtime-${uid() ?? "user"}`;
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      await Deno.chmod(dir, 0o700);
      Deno.env.set("XDG_RUNTIME_DIR", dir);
    }
  } catch {
    // Without env or write permission Mesa just prints its warning.
  }
  return await gpu.requestAdapter();
}

const cpu: TensorBackend = {
  name: "cpu",
  device: "pure JavaScript on the CPU (reference backend)",
  async init() {
    await import("@tensorflow/tfjs-backend-cpu");
    await activate("cpu");
  },
};

const wasm: TensorBackend = {
  name: "wasm",
  device: "WebAssembly (XNNPACK, SIMD) on the CPU",
  async init() {
    try {
      await import("@tensorflow/tfjs-backend-wasm");
    } catch (cause) {
      throw new BackendError(
        "wasm",
        `Backend "wasm" is unavailable: ${errorText(cause)}`,
        { cause },
      );
    }
    // wasm lacks Conv2DBackpropFilter and its Conv2DBackpropInput is a naive
    // loop; ours run on XNNPACK's matmul and forward conv instead.
    registerConvGradKernels("wasm");
    registerAugmentKernels("wasm");
    await activate("wasm");
  },
};

const webgpu: TensorBackend = {
  name: "webgpu",
  device: "WebGPU (navigator.gpu)",
  async init() {
    const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
    if (gpu === undefined) {
      throw new BackendError(
        "webgpu",
        'Backend "webgpu" is unavailable: navigator.gpu is not defined in this runtime',
      );
    }
    const adapter = await requestAdapter(gpu);
    if (adapter === null) {
      throw new BackendError(
        "webgpu",
        'Backend "webgpu" is unavailable: no WebGPU adapter (on Linux without a GPU, `apt-get install mesa-vulkan-drivers` gives a software one)',
      );
    }
    await import("@tensorflow/tfjs-backend-webgpu");
    await activate("webgpu");
  },
};

const tensorflow: TensorBackend = {
  name: "tensorflow",
  device: "native libtensorflow (tfjs-node-gpu or tfjs-node)",
  async init() {
    const failures: string[] = [];
    for (const pkg of ["tfjs-node-gpu", "tfjs-node"]) {
      try {
        await importOptional(`npm:@tensorflow/${pkg}@4.22.0`);
        await activate("tensorflow");
        return;
      } catch (cause) {
        failures.push(`@tensorflow/${pkg}: ${errorText(cause)}`);
      }
    }
    throw new BackendError(
      "tensorflow",
      `Backend "tensorflow" is unavailable: ${
        failures.join("; ")
      } (it needs a native libtensorflow that its install step downloads)`,
    );
  },
};

const cpuFast: TensorBackend = {
  name: "cpu-fast",
  device: "pure JavaScript on the CPU, with im2col + matmul conv gradients",
  async init() {
    const { registerCpuFastBackend } = await import("./kernels/cpu_fast.ts");
    await registerCpuFastBackend();
    await activate("cpu-fast");
  },
};

/**
 * A backend on native libraries: `register` loads them and registers it (a
 * failure becomes one `BackendError` line naming the backend), then it is
 * activated.
 */
function nativeLibraryBackend(
  name: "blas" | "native",
  device: string,
  register: () => Promise<unknown>,
): TensorBackend {
  return {
    name,
    device,
    async init() {
      try {
        await register();
      } catch (cause) {
        throw new BackendError(
          name,
          `Backend "${name}" is unavailable: ${errorText(cause)}`,
          { cause },
        );
      }
      await activate(name);
    },
  };
}

const blas = nativeLibraryBackend(
  "blas",
  "WebAssembly, with convolutions and matrix products on native libraries (FFI: a BLAS, and oneDNN when installed)",
  async () => (await import("./kernels/blas_backend.ts")).registerBlasBackend(),
);

const native = nativeLibraryBackend(
  "native",
  "native memory (no wasm heap), with convolutions, BatchNorm and matrix products on native libraries (FFI: a BLAS, and oneDNN when installed) and the other ops in JavaScript",
  async () =>
    (await import("./kernels/native_backend.ts")).registerNativeBackend(),
);

const BACKENDS: Record<BackendName, TensorBackend> = {
  cpu,
  "cpu-fast": cpuFast,
  wasm,
  blas,
  native,
  webgpu,
  tensorflow,
};

/**
 * Returns the backend object for a name, without loading it.
 *
 * @example
 * ```ts
 * import { getBackend } from "@scaling-vicreg/backend";
 * console.log(getBackend("cpu").device);
 * ```
 *
 * @param name One of {@linkcode BACKEND_NAMES}.
 * @returns The backend.
 */
export function getBackend(name: string): TensorBackend {
  if (!Object.hasOwn(BACKENDS, name)) {
    throw new BackendError(
      name,
      `Unknown backend "${name}": expected one of auto, ${
        BACKEND_NAMES.join(", ")
      }`,
    );
  }
  return BACKENDS[name as BackendName];
}

/** A backend's usability on this machine, as found by {@linkcode probeBackends}. */
export interface BackendProbe {
  /** The backend. */
  name: BackendName;
  /** Whether it loaded and passed the self-test. */
  ok: boolean;
  /** Why not, when `ok` is false. */
  reason?: string;
  /** What it runs on, when `ok` (e.g. the BLAS library and its threads). */
  detail?: string;
}

/**
 * A quick self-test: one conv + BN-like + loss gradient step, compared with
 * values computed by hand-free identities (the gradient of `sum(x * w)` is `w`).
 * Catches backends that load but lack a kernel a training step needs.
 * Reads the result asynchronously: WebGPU's `dataSync` goes through a 2-D
 * `OffscreenCanvas`, which Deno does not have.
 */
async function selfTest(name: BackendName): Promise<void> {
  const finite = tf.tidy(() => {
    const x = tf.ones([2, 4, 4, 3]) as tf.Tensor4D;
    const w = tf.fill([3, 3, 3, 2], 0.5) as tf.Tensor4D;
    const f = (a: tf.Tensor, b: tf.Tensor) => {
      const y = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same");
      const m = tf.moments(y, [0, 1, 2]);
      return tf.sum(tf.square(tf.relu(tf.sub(y, m.mean))));
    };
    const [gx, gw] = tf.grads(f)([x, w]);
    return tf.all(tf.isFinite(tf.concat([
      tf.reshape(gx, [-1]),
      tf.reshape(gw, [-1]),
    ])));
  });
  let ok: boolean;
  try {
    ok = (await finite.data())[0] === 1;
  } finally {
    finite.dispose();
  }
  if (!ok) {
    throw new BackendError(
      name,
      `Backend "${name}" failed its self-test: non-finite gradients`,
    );
  }
}

/**
 * A backend's device in words, with its native libraries for `blas` (and why
 * oneDNN is not in use, e.g. a bad `VICREG_DNNL`, which halves convolution
 * speed), as every command's backend line prints it.
 */
async function describe(backend: TensorBackend): Promise<string> {
  if (backend.name === "webgpu") return await describeGpu(backend.device);
  if (backend.name !== "blas" && backend.name !== "native") {
    return backend.device;
  }
  const { loadNativeLibraries } = await import("./kernels/blas_backend.ts");
  const { blas, dnnl, dnnlUnavailable } = loadNativeLibraries();
  const parts = [
    blas.library,
    blas.core,
    blas.threads === undefined ? undefined : `${blas.threads} threads`,
  ].filter((p) => p !== undefined);
  const convolutions = dnnl !== undefined
    ? `convolutions and BatchNorm on oneDNN ${dnnl.version} (${dnnl.library})`
    : `convolutions on the BLAS (${dnnlUnavailable})`;
  return `${backend.device}: ${parts.join(", ")}; ${convolutions}`;
}

/**
 * WebGPU's device with its adapter (a GPU check must show whether it ran on
 * the GPU or on a software adapter such as Mesa's llvmpipe).
 */
async function describeGpu(device: string): Promise<string> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  const adapter = gpu === undefined ? null : await requestAdapter(gpu);
  if (adapter === null) return device;
  const info = adapter.info;
  const parts = [
    info?.description || info?.device || "unnamed adapter",
    info?.vendor ? `vendor ${info.vendor}` : undefined,
    info?.architecture ? `architecture ${info.architecture}` : undefined,
    await isSoftwareGpu() ? "software" : undefined,
  ].filter((p) => p !== undefined);
  return `${device}: ${parts.join(", ")}`;
}

async function tryBackend(name: BackendName): Promise<BackendProbe> {
  try {
    const backend = getBackend(name);
    await backend.init();
    await selfTest(name);
    return { name, ok: true, detail: await describe(backend) };
  } catch (error) {
    return { name, ok: false, reason: errorText(error) };
  }
}

// tfjs-node's packages are resolved (downloaded, with install scripts that
// Deno skips and warns about) only when `tensorflow` is named.
const TENSORFLOW_NOT_TRIED =
  "not tried: loaded only when named (--backend tensorflow), see bench/README.md";

/**
 * Loads each backend in turn and reports which can train here; `tensorflow`
 * is reported as not tried (it is resolved only when named).
 * Leaves the CPU backend active afterwards.
 *
 * @returns One entry per backend in {@linkcode BACKEND_NAMES} order.
 */
export async function probeBackends(): Promise<BackendProbe[]> {
  await registerGradients();
  const probes: BackendProbe[] = [];
  for (const name of BACKEND_NAMES) {
    probes.push(
      name === "tensorflow"
        ? { name, ok: false, reason: TENSORFLOW_NOT_TRIED }
        : await tryBackend(name),
    );
  }
  await cpu.init();
  return probes;
}

/**
 * Whether a backend's tensors can be read synchronously (`dataSync`,
 * `arraySync`): not on WebGPU, whose synchronous read needs a 2-D
 * `OffscreenCanvas`, which Deno does not have.
 *
 * @example
 * ```ts
 * import { readsSynchronously } from "@scaling-vicreg/backend";
 * console.log(readsSynchronously("blas"), readsSynchronously("webgpu")); // true false
 * ```
 *
 * @param name A TF.js backend name; the active backend by default.
 * @returns Whether synchronous reads work there.
 */
export function readsSynchronously(name: string = tf.getBackend()): boolean {
  return name !== "webgpu";
}

/**
 * Whether the active backend's tensors live in host memory (every backend
 * but `webgpu` and `webgl`): there one read of a batch and host-side slicing
 * beats many small device ops; a GPU backend prefers few large dispatches and
 * no reads back.
 *
 * @example
 * ```ts
 * import { activeBackendOnHost, useBackend } from "@scaling-vicreg/backend";
 * await useBackend("cpu");
 * console.log(activeBackendOnHost()); // true
 * ```
 *
 * @returns Whether the active backend computes on the host.
 */
export function activeBackendOnHost(): boolean {
  const name = tf.getBackend();
  return name !== "webgpu" && name !== "webgl";
}

/**
 * The backend to run work on that reads tensors synchronously (the linear
 * probe's mini-batches, kNN and the metrics): `name` itself where it can,
 * else the fastest other backend that works here. Leaves `name` active.
 *
 * @example
 * ```ts
 * import { synchronousBackendFor, useBackend } from "@scaling-vicreg/backend";
 * await useBackend("cpu");
 * console.log(await synchronousBackendFor("cpu")); // "cpu"
 * ```
 *
 * @param name The active backend.
 * @returns `name`, or the backend to switch to for such work.
 */
export async function synchronousBackendFor(
  name: BackendName,
): Promise<BackendName> {
  if (readsSynchronously(name)) return name;
  const other = await useBackend("auto", { exclude: ["webgpu"] });
  await useBackend(name);
  return other.name;
}

/** Options of {@linkcode useBackend}. */
export interface UseBackendOptions {
  /**
   * Backends `auto` never picks (e.g. software WebGPU, slower than `cpu`).
   * @default {[]}
   */
  exclude?: readonly BackendName[];
}

/**
 * Makes a backend the active TF.js backend, registering gradients first.
 *
 * The backend is TF.js's global one: it stays active for every tensor op in
 * the process until the next call. `"auto"` tries {@linkcode BACKEND_NAMES}
 * fastest first and keeps the first that loads and passes a one-step
 * training self-test; a WebGPU fallback (software) adapter is skipped
 * because it is slower than the CPU, and `tensorflow` is never tried (its
 * packages are resolved only when it is named).
 * A named backend that cannot load rejects with a {@linkcode BackendError}
 * saying which backend, why, and which backends are available here.
 *
 * @example
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * const info = await useBackend("cpu");
 * console.log(info.name); // "cpu"
 * ```
 *
 * @param name A backend name or `"auto"`.
 * @param options See {@linkcode UseBackendOptions}.
 * @returns What was chosen, and why.
 */
export async function useBackend(
  name: BackendName | "auto" = "auto",
  options: UseBackendOptions = {},
): Promise<BackendInfo> {
  await registerGradients();
  if (name !== "auto") {
    const backend = getBackend(name);
    try {
      await backend.init();
    } catch (error) {
      const available = (await probeBackends())
        .filter((p) => p.ok)
        .map((p) => p.name);
      const why = error instanceof BackendError
        ? error.message
        : `Backend "${name}" failed: ${errorText(error)}`;
      throw new BackendError(
        name,
        `${why}. Available here: ${available.join(", ") || "none"}`,
        { cause: error },
      );
    }
    return { name, device: await describe(backend), reason: "requested" };
  }
  const skipped: string[] = [];
  for (const candidate of BACKEND_NAMES) {
    if (options.exclude?.includes(candidate)) continue;
    if (candidate === "tensorflow") continue; // resolved only when named
    if (candidate === "webgpu" && await isSoftwareGpu()) {
      skipped.push("webgpu (software adapter only)");
      continue;
    }
    const probe = await tryBackend(candidate);
    if (probe.ok) {
      const backend = getBackend(candidate);
      await backend.init();
      return {
        name: candidate,
        device: probe.detail ?? backend.device,
        reason: `fastest that works here${
          skipped.length ? `; skipped ${skipped.join(", ")}` : ""
        }`,
      };
    }
    // "Backend "x" is unavailable: " repeats the name; keep what follows.
    const why = (probe.reason ?? "").replace(/^Backend "[^"]+" is \w+: /, "");
    skipped.push(`${candidate} (${why.slice(0, 100)})`);
  }
  throw new BackendError(
    "auto",
    `No backend works here: ${skipped.join("; ")}`,
  );
}

async function isSoftwareGpu(): Promise<boolean> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (gpu === undefined) return false;
  const adapter = await requestAdapter(gpu);
  if (adapter === null) return false;
  return (adapter as GPUAdapter & { isFallbackAdapter?: boolean })
        .isFallbackAdapter === true ||
    /llvmpipe|swiftshader|lavapipe/i.test(adapter.info?.description ?? "");
}
