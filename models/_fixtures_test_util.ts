// Test-only helpers for the PyTorch fixtures in testdata/ (see make_model_fixtures.py).
import {
  decodeSafetensors,
  type SafeTensor,
} from "@scaling-vicreg/backend/safetensors";

/** Reads testdata/NAME as decoded safetensors. */
export function readFixture(name: string): Record<string, SafeTensor> {
  return decodeSafetensors(
    Deno.readFileSync(new URL(`./testdata/${name}`, import.meta.url)),
  ).tensors;
}

/** The tensors whose names start with `prefix`, with the prefix removed. */
export function withPrefix(
  tensors: Record<string, SafeTensor>,
  prefix: string,
): Record<string, SafeTensor> {
  const out: Record<string, SafeTensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (name.startsWith(prefix)) out[name.slice(prefix.length)] = t;
  }
  return out;
}
