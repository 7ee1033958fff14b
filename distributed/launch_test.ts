import {
  assertEquals,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/assert";
import {
  createCommunicator,
  detectMpiLaunch,
  mpiexecCommand,
} from "./launch.ts";
import { SingleCommunicator } from "./communicator.ts";

const from = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("detectMpiLaunch() reads hydra, SLURM PMI-2/PMIx and Open MPI variables", () => {
  assertEquals(detectMpiLaunch(from({})), undefined);
  assertEquals(
    detectMpiLaunch(from({ PMI_RANK: "1", PMI_SIZE: "2", PMI_FD: "5" })),
    { launcher: "hydra", rank: 1, size: 2 },
  );
  assertEquals(
    detectMpiLaunch(
      from({ SLURM_JOB_ID: "9", PMI_RANK: "3", SLURM_STEP_NUM_TASKS: "8" }),
    ),
    { launcher: "slurm", rank: 3, size: 8 },
  );
  assertEquals(
    detectMpiLaunch(
      from({ SLURM_JOB_ID: "9", PMIX_RANK: "0", SLURM_NTASKS: "4" }),
    ),
    { launcher: "slurm", rank: 0, size: 4 },
  );
  assertEquals(
    detectMpiLaunch(
      from({ OMPI_COMM_WORLD_RANK: "2", OMPI_COMM_WORLD_SIZE: "3" }),
    ),
    { launcher: "open-mpi", rank: 2, size: 3 },
  );
  // A batch script inside an allocation is not a launch.
  assertEquals(
    detectMpiLaunch(
      from({ SLURM_JOB_ID: "9", SLURM_PROCID: "0", SLURM_NTASKS: "4" }),
    ),
    undefined,
  );
});

Deno.test("detectMpiLaunch() names a variable that is not a rank or size", () => {
  assertThrows(
    () => detectMpiLaunch(from({ PMI_RANK: "0", PMI_SIZE: "two" })),
    RangeError,
    "PMI_SIZE must be an integer ≥ 1: received two",
  );
  assertThrows(
    () => detectMpiLaunch(from({ PMI_RANK: "2", PMI_SIZE: "2" })),
    RangeError,
    "PMI_RANK=2 must be below PMI_SIZE=2",
  );
  assertThrows(
    () => detectMpiLaunch(from({ PMI_RANK: "0" })),
    RangeError,
    "PMI_SIZE must be an integer ≥ 1: received nothing",
  );
});

Deno.test("mpiexecCommand() runs the deno binary itself under mpiexec -n R", () => {
  const { command, args } = mpiexecCommand(3, [
    "job.ts",
    "pretrain",
    "--steps",
    "5",
  ], {
    mpiexec: "/opt/mpich/bin/mpiexec.hydra",
    launcherArgs: ["-f", "hosts"],
  });
  assertEquals(command, "/opt/mpich/bin/mpiexec.hydra");
  assertEquals(args, [
    "-n",
    "3",
    "-f",
    "hosts",
    Deno.execPath(),
    "run",
    "-A",
    "job.ts",
    "pretrain",
    "--steps",
    "5",
  ]);
  assertThrows(
    () => mpiexecCommand(0, ["x.ts"], { mpiexec: "mpiexec" }),
    RangeError,
    "--ranks must be an integer ≥ 1: received 0",
  );
  assertThrows(
    () => mpiexecCommand(2, [], { mpiexec: "mpiexec" }),
    RangeError,
    "argv must start with the script",
  );
});

Deno.test("createCommunicator() gives the single-process communicator outside a launch", async () => {
  const single = createCommunicator({ kind: "single" });
  assertTrue(single instanceof SingleCommunicator);
  await single.close();
  if (detectMpiLaunch() === undefined) {
    const auto = createCommunicator();
    assertEquals([auto.kind, auto.rank, auto.size], ["single", 0, 1]);
    await auto.close();
  }
  assertThrows(
    () => createCommunicator({ kind: "nccl" as "mpi" }),
    RangeError,
    'distributed must be "auto", "mpi" or "single": received "nccl"',
  );
});
