/**
 * What the CPU's instruction set offers, as Linux's `/proc/cpuinfo` lists it
 * (`flags`), for the choices that depend on it (bf16 convolutions need
 * AVX512-BF16 or AMX-BF16). `VICREG_CPU_FLAGS` (space- or comma-separated)
 * replaces what the CPU says, so tests can simulate another CPU.
 *
 * @module
 */

/** The environment variable that replaces the CPU's flags. */
export const CPU_FLAGS_ENV = "VICREG_CPU_FLAGS";

/** The flags any one of which gives oneDNN native bf16 convolutions. */
export const BF16_CPU_FLAGS: readonly string[] = ["avx512_bf16", "amx_bf16"];

function envFlags(): string | undefined {
  const query = { name: "env", variable: CPU_FLAGS_ENV } as const;
  if (Deno.permissions.querySync(query).state !== "granted") return undefined;
  return Deno.env.get(CPU_FLAGS_ENV);
}

function cpuinfoFlags(): string {
  try {
    const text = Deno.readTextFileSync("/proc/cpuinfo");
    return text.match(/^flags\s*:(.*)$/m)?.[1] ?? "";
  } catch {
    return ""; // not Linux, or no read permission: nothing known
  }
}

/**
 * The CPU's feature flags: `VICREG_CPU_FLAGS` when set (even empty: a CPU
 * with none), else the first `flags` line of `/proc/cpuinfo`, else none.
 *
 * @example
 * ```ts ignore
 * import { cpuFlags } from "./cpu_features.ts";
 * console.log(cpuFlags().has("avx512f"));
 * ```
 *
 * @returns The flags, lower-case.
 */
export function cpuFlags(): Set<string> {
  const text = envFlags() ?? cpuinfoFlags();
  return new Set(
    text.toLowerCase().split(/[\s,]+/).filter((flag) => flag !== ""),
  );
}

/**
 * Whether the CPU has native bf16 arithmetic (one of
 * {@linkcode BF16_CPU_FLAGS}).
 *
 * @returns `true` with AVX512-BF16 or AMX-BF16.
 */
export function cpuHasBf16(): boolean {
  const flags = cpuFlags();
  return BF16_CPU_FLAGS.some((flag) => flags.has(flag));
}
