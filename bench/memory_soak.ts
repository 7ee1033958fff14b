/**
 * Memory over a long run of the real pretraining loop: live tensors and RSS
 * every `--every` steps of `--steps` steps (tiny ResNet, 16 px views, batch 8,
 * local loss on), printed as JSON lines, then one summary line saying whether
 * the tensor count stayed constant and how RSS moved after the first tenth
 * of the run (the warm-up of allocators and JIT).
 *
 * ```sh
 * deno task bench:soak                        # 1000 steps on the auto backend
 * deno task bench:soak --steps 200 --backend cpu-fast
 * ```
 *
 * @module
 */
import { type BackendName, useBackend } from "@scaling-vicreg/backend";
import { pretrain, resolveConfig } from "@scaling-vicreg/train";
import { flag } from "./_util.ts";

if (import.meta.main) {
  const steps = Number(flag(Deno.args, "steps", "1000"));
  const every = Number(flag(Deno.args, "every", "100"));
  const backend = await useBackend(
    flag(Deno.args, "backend", "auto") as BackendName | "auto",
  );
  const dir = await Deno.makeTempDir();
  const samples: { step: number; tensors: number; rssMiB: number }[] = [];
  try {
    await pretrain(
      resolveConfig({
        flags: {
          preset: "tiny",
          "exp-dir": dir,
          size: 16,
          "image-size": 24,
          "batch-size": 8,
          "num-images": 64,
          epochs: Math.ceil(steps / 8),
          "max-steps": steps,
          mlp: "64-64",
          "local-mlp": "32-16",
          "log-every": every,
          "keep-checkpoints": 1,
        },
      }),
      {
        onStep: (m) => {
          const sample = {
            step: m.step,
            tensors: m.numTensors,
            rssMiB: Math.round(Deno.memoryUsage().rss / 2 ** 20),
          };
          samples.push(sample);
          console.log(JSON.stringify({ backend: backend.name, ...sample }));
        },
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const settled = samples.filter((s) => s.step > steps / 10);
  const rss = settled.map((s) => s.rssMiB);
  console.log(JSON.stringify({
    backend: backend.name,
    steps,
    tensorsConstant: new Set(samples.map((s) => s.tensors)).size === 1,
    tensors: samples.at(-1)?.tensors,
    // After warm-up: the first, lowest, highest and last RSS sample; a leak
    // shows as last well above first, not as noise between min and max.
    rssFirstMiB: rss[0] ?? null,
    rssMinMiB: rss.length ? Math.min(...rss) : null,
    rssMaxMiB: rss.length ? Math.max(...rss) : null,
    rssLastMiB: rss.at(-1) ?? null,
  }));
}
