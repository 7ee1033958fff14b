/**
 * Reading back a run directory's `metrics.jsonl`: the logged steps, without
 * the event lines.
 *
 * @module
 */
import type { StepMetrics } from "./pretrain.ts";

/**
 * The logged steps of a run directory's `metrics.jsonl` (empty when absent),
 * without its event lines.
 *
 * @param dir The run directory.
 * @returns One entry per logged step.
 */
export async function readMetrics(dir: string): Promise<StepMetrics[]> {
  let body: string;
  try {
    body = await Deno.readTextFile(`${dir}/metrics.jsonl`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  // Event lines (`{"event": "config-change", …}`) are not steps.
  return body.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l))
    .filter((m) => m.event === undefined);
}
