/**
 * The git commit of the working directory, for the metadata of studies.
 *
 * @module
 */

/**
 * The commit of the code (`git rev-parse HEAD` in the working directory), or
 * `null` when git or the repository is absent.
 *
 * @returns 40 hex digits, or `null`.
 */
export async function gitCommit(): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "HEAD"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const hash = new TextDecoder().decode(out.stdout).trim();
    return out.success && /^[0-9a-f]{40}$/.test(hash) ? hash : null;
  } catch {
    return null;
  }
}
