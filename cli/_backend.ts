/**
 * How the commands place the probes on a backend.
 *
 * @module
 */
import {
  type BackendName,
  synchronousBackendFor,
} from "@scaling-vicreg/backend";

/**
 * The backend for a command's probes: the active one where it can read
 * tensors synchronously, else the fastest other one (said on stderr).
 *
 * @param command The command, for the message.
 * @param active The active backend.
 * @returns The backend to probe on.
 */
export async function probeBackendFor(
  command: string,
  active: BackendName,
): Promise<BackendName> {
  const probe = await synchronousBackendFor(active);
  if (probe !== active) {
    console.error(
      `${command}: features on ${active}; the probes (linear classifiers, kNN) run on ${probe}, since ${active} cannot read tensors synchronously`,
    );
  }
  return probe;
}
