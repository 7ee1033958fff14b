// Shared by the bench scripts: flag reading, rounding, and running a Python
// side that prints one JSON line.

/** The value of `--name v` or `--name=v` in `args`, or `fallback`. */
export function flag(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  return eq === undefined ? fallback : eq.slice(name.length + 3);
}

/** What the bench lines record about the machine. */
export function machine(): {
  cpus: number;
  cpu: string;
  os: string;
  arch: string;
} {
  return {
    cpus: navigator.hardwareConcurrency,
    cpu: cpuModel(),
    os: Deno.build.os,
    arch: Deno.build.arch,
  };
}

/** The processor's model name (Linux), or "unknown". */
function cpuModel(): string {
  try {
    const text = Deno.readTextFileSync("/proc/cpuinfo");
    return /^model name\s*:\s*(.+)$/m.exec(text)?.[1].trim() ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** `x` rounded to `digits` decimals. */
export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/**
 * The environment this process started with, read before any backend loads:
 * `blas` sets thread variables for its native libraries (`OMP_WAIT_POLICY`,
 * `OPENBLAS_THREAD_TIMEOUT`), and PyTorch must not inherit them.
 */
const LAUNCH_ENV: Record<string, string> | undefined =
  Deno.permissions.querySync({ name: "env" }).state === "granted"
    ? Deno.env.toObject()
    : undefined;

/**
 * Runs `python script args…` (with the environment this process started
 * with) and parses the last line of its stdout as JSON, or says why it could
 * not (no python, no torch, a failure).
 */
export async function runPythonJson<T>(
  python: string,
  script: string,
  args: string[],
): Promise<T | { error: string }> {
  const name = script.split("/").at(-1);
  try {
    const out = await new Deno.Command(python, {
      args: [script, ...args],
      ...(LAUNCH_ENV === undefined ? {} : { env: LAUNCH_ENV, clearEnv: true }),
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    if (!out.success) {
      const err = text.decode(out.stderr).trim().split("\n").at(-1) ?? "";
      return { error: `${name} failed: ${err}` };
    }
    return JSON.parse(text.decode(out.stdout).trim().split("\n").at(-1)!);
  } catch (error) {
    return { error: `cannot run ${python}: ${String(error)}` };
  }
}
