// Shared by the tests that signal a process once it listens (Linux /proc).

/**
 * Whether process `pid` has a handler installed for signal number `signal`
 * (its `SigCgt` mask in `/proc/<pid>/status`); `false` where it cannot be read.
 */
export async function catchesSignal(
  pid: number,
  signal: number,
): Promise<boolean> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
  const mask = /^SigCgt:\s*([0-9a-f]+)/m.exec(status)?.[1];
  return mask !== undefined &&
    ((BigInt(`0x${mask}`) >> BigInt(signal - 1)) & 1n) === 1n;
}
