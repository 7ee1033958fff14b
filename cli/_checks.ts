// Flag checks shared by the commands that run the probe protocol.
import { UsageError } from "./args.ts";

/**
 * Checks the probe budget flags before any work starts.
 *
 * @param trials `--trials`: sweep trials, ≥ 1.
 * @param maxEpochs `--max-epochs`: most epochs a probe trains, in [1, 100].
 */
export function checkProbeFlags(trials: number, maxEpochs: number): void {
  if (trials < 1) {
    throw new UsageError(
      `Flag --trials expects a positive integer: received ${trials}`,
    );
  }
  if (maxEpochs < 1 || maxEpochs > 100) {
    throw new UsageError(
      `Flag --max-epochs expects an integer in [1, 100]: received ${maxEpochs}`,
    );
  }
}
