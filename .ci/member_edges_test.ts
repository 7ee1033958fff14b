import { assertEquals } from "@scaling-vicreg/backend/testing";
import {
  ALLOWED_EDGES,
  memberViolations,
  targetMember,
} from "./member_edges.ts";

Deno.test("targetMember() names the member of a scoped or relative specifier", () => {
  assertEquals(
    targetMember("train/step.ts", "@scaling-vicreg/losses"),
    "losses",
  );
  assertEquals(
    targetMember("train/step.ts", "@scaling-vicreg/backend/testing"),
    "backend",
  );
  assertEquals(targetMember("train/step.ts", "./vicreg_model.ts"), "train");
  assertEquals(targetMember("backend/kernels/blas.ts", "../fs.ts"), "backend");
  assertEquals(targetMember("train/step.ts", "../probe/knn.ts"), "probe");
  assertEquals(
    targetMember("train/step.ts", "@tensorflow/tfjs-core"),
    undefined,
  );
  assertEquals(targetMember("train/step.ts", "yaml"), undefined);
});

Deno.test("memberViolations() passes the allowed edges and names each one outside the table", () => {
  const ok = [
    'import { Rng } from "@scaling-vicreg/backend";',
    'import { vicregLoss } from "@scaling-vicreg/losses";',
    'import type { Communicator } from "@scaling-vicreg/distributed";',
    'import { x } from "./own_file.ts";',
  ].join("\n");
  assertEquals(memberViolations("train", "train/a.ts", ok), []);
  const bad = [
    'import { probeBackbone } from "@scaling-vicreg/experiments";',
    'import type { ProbeReport } from "@scaling-vicreg/probe";',
    'export * from "../models/resnet.ts";',
  ].join("\n");
  assertEquals(
    memberViolations("train", "train/a.ts", bad).map((
      v,
    ) => [v.line, v.message]),
    [
      [
        1,
        'train -> experiments ("@scaling-vicreg/experiments") is not an allowed edge: train may import backend, optim, models, losses, augment, data, distributed, tensorboard',
      ],
      [
        2,
        'train -> probe ("@scaling-vicreg/probe") is not an allowed edge: train may import backend, optim, models, losses, augment, data, distributed, tensorboard',
      ],
      [
        3,
        '"../models/resnet.ts" reaches into member "models" by a relative path: import "@scaling-vicreg/models" by name',
      ],
    ],
  );
  // A leaf imports nothing, not even backend's tensor helpers.
  assertEquals(
    memberViolations(
      "distributed",
      "distributed/mpi.ts",
      'import { Rng } from "@scaling-vicreg/backend";',
    ).map((v) => v.message),
    [
      'distributed -> backend ("@scaling-vicreg/backend") is not an allowed edge: distributed may import no other member',
    ],
  );
  // cli and bench may import any member, but by name.
  assertEquals(
    memberViolations("cli", "cli/x.ts", bad).map((v) => v.line),
    [3],
  );
});

Deno.test("memberViolations() lets every test use the tensor-free assertions, and no lower-member test start the CLI", () => {
  const helper =
    'import { assertEquals } from "@scaling-vicreg/backend/assert";';
  assertEquals(
    memberViolations("distributed", "distributed/mpi_test.ts", helper),
    [],
  );
  assertEquals(
    memberViolations("distributed", "distributed/mpi.ts", helper).length,
    1,
  );
  const startsCli =
    'const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;';
  assertEquals(
    memberViolations("train", "train/x_test.ts", startsCli).map((v) => v.line),
    [1],
  );
  assertEquals(memberViolations("cli", "cli/x_test.ts", startsCli), []);
});

Deno.test("memberViolations() asks for a row for a member the table does not know", () => {
  const [v] = memberViolations(
    "newmember",
    "newmember/a.ts",
    "",
    ALLOWED_EDGES,
  );
  assertEquals(v.message.includes('member "newmember" has no row'), true);
});
