import {
  assertEquals,
  assertRejects,
  assertThrows,
} from "@scaling-vicreg/backend/testing";
import {
  appendMetrics,
  createMetrics,
  parseMetricsLines,
  readMetrics,
  type StepMetrics,
  truncateMetrics,
} from "./run_metrics.ts";

const step = (n: number) =>
  ({ step: n, loss: 10 - n }) as unknown as StepMetrics;

Deno.test("parseMetricsLines() drops a torn last line and nothing else", () => {
  assertEquals(
    parseMetricsLines(
      '{"step":1,"loss":9}\n{"step":2,"loss":8}\n{"step":3,"lo',
    ),
    [{ step: 1, loss: 9 }, { step: 2, loss: 8 }],
  );
  // A torn line followed by blank lines is still the last one.
  assertEquals(parseMetricsLines('{"step":1}\n{"st\n\n'), [{ step: 1 }]);
  assertEquals(parseMetricsLines(""), []);
});

Deno.test("parseMetricsLines() names the file and line of a damaged line before the last", () => {
  assertThrows(
    () =>
      parseMetricsLines(
        '{"step":1}\nnot json\n{"step":3}\n',
        "run/metrics.jsonl",
      ),
    SyntaxError,
    "run/metrics.jsonl:2 is not a JSON line",
  );
});

Deno.test("appendMetrics(), readMetrics() and truncateMetrics() keep one file's lines", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assertEquals(await readMetrics(dir), []);
    await createMetrics(dir);
    for (const n of [1, 2, 3]) await appendMetrics(dir, step(n));
    await appendMetrics(dir, { step: 3, event: "config-change", changes: [] });
    await appendMetrics(dir, step(4));
    // A kill mid-append tears the last line.
    await Deno.writeTextFile(`${dir}/metrics.jsonl`, '{"step":5,"lo', {
      append: true,
    });
    assertEquals((await readMetrics(dir)).map((m) => m.step), [1, 2, 3, 4]);
    // A resume from the checkpoint of step 3: later steps and the torn line go.
    await truncateMetrics(dir, 3, [{ step: 3, event: "resumed" }]);
    assertEquals(
      await Deno.readTextFile(`${dir}/metrics.jsonl`),
      [
        '{"step":1,"loss":9}',
        '{"step":2,"loss":8}',
        '{"step":3,"loss":7}',
        '{"step":3,"event":"config-change","changes":[]}',
        '{"step":3,"event":"resumed"}',
        "",
      ].join("\n"),
    );
    // Damage before the last line is refused, not silently dropped.
    await Deno.writeTextFile(
      `${dir}/metrics.jsonl`,
      '{"step":1}\nxx\n{"step":2}\n',
    );
    await assertRejects(
      () => truncateMetrics(dir, 2),
      SyntaxError,
      `${dir}/metrics.jsonl:2 is not a JSON line`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
