/**
 * Opening native libraries through Deno's FFI without ever prompting for a
 * permission (`auto` probes the native backends on every machine).
 *
 * @module
 */

/**
 * An environment variable, when env access to it is granted.
 *
 * @param variable Its name.
 * @returns Its value, or `undefined` when unset, empty or not granted.
 */
export function grantedEnv(variable: string): string | undefined {
  const query = { name: "env", variable } as const;
  if (Deno.permissions.querySync(query).state !== "granted") return undefined;
  return Deno.env.get(variable) || undefined;
}

/**
 * Sets an environment variable a native library reads when it loads, unless
 * it is set already (the user's choice wins) or env access is not granted.
 *
 * @param variable Its name.
 * @param value The value to give it.
 */
export function setEnvUnlessSet(variable: string, value: string): void {
  const query = { name: "env", variable } as const;
  if (Deno.permissions.querySync(query).state !== "granted") return;
  if (Deno.env.get(variable) === undefined) Deno.env.set(variable, value);
}

/**
 * Throws `message` unless FFI is granted.
 *
 * @param message The one-line error.
 */
export function requireFfi(message: string): void {
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    throw new Error(message);
  }
}

/** A native library this process opened, with its bound symbols. */
export interface OpenedLibrary {
  /** The path or name it was opened by. */
  path: string;
  /**
   * Its bound functions, the very object every caller calls through (so a
   * profiler can wrap them; see `kernel_profile.ts`).
   */
  symbols: Record<string, unknown>;
}

const opened: OpenedLibrary[] = [];

/**
 * The native libraries {@linkcode openFirst} has opened and kept so far.
 *
 * @returns Them, in the order they were opened.
 */
export function openedLibraries(): readonly OpenedLibrary[] {
  return opened;
}

/** What {@linkcode openFirst} found. */
export type Opened<S extends Deno.ForeignLibraryInterface> =
  | { path: string; lib: Deno.DynamicLibrary<S> }
  | { path: undefined; failures: string[] };

/**
 * Opens the first of `paths` that `Deno.dlopen` opens and `accept` takes.
 *
 * @param paths Library paths or names, in order.
 * @param symbols The symbols to bind.
 * @param accept Returns why a library that opened is not usable (it is then
 * closed), or `undefined` to take it.
 * @returns The library and its path, or one line per path on why not.
 */
export function openFirst<S extends Deno.ForeignLibraryInterface>(
  paths: string[],
  symbols: S,
  accept: (lib: Deno.DynamicLibrary<S>) => string | undefined = () => undefined,
): Opened<S> {
  const failures: string[] = [];
  for (const path of paths) {
    let lib: Deno.DynamicLibrary<S>;
    try {
      lib = Deno.dlopen(path, symbols);
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      failures.push(`${path}: ${text.split("\n")[0]}`);
      continue;
    }
    const refusal = accept(lib);
    if (refusal === undefined) {
      opened.push({
        path,
        symbols: lib.symbols as unknown as Record<string, unknown>,
      });
      return { path, lib };
    }
    lib.close();
    failures.push(`${path}: ${refusal}`);
  }
  return { path: undefined, failures };
}
