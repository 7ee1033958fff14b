/**
 * The SUN397 layout: `<letter>/<class>/<image>` with the
 * `Partitions/Training_NN.txt` / `Testing_NN.txt` lists.
 *
 * @module
 */
import { exists } from "@scaling-vicreg/backend/fs";
import { join } from "node:path";
import { DatasetError } from "./decode.ts";
import type { DatasetEntry, DatasetListing } from "./dataset_options.ts";
import type { ResolvedDatasetOptions } from "./_dataset_options.ts";
import { isDir, readLines } from "./_dataset_fs.ts";

/** The folder holding `Training_01.txt`, if any. */
export async function sunPartitions(root: string): Promise<string | undefined> {
  for (
    const dir of [
      join(root, "Partitions"),
      root,
      join(root, "..", "Partitions"),
    ]
  ) {
    if (await exists(join(dir, "Training_01.txt"))) return dir;
  }
  return undefined;
}

/** Lists one split of one SUN397 partition. */
export async function listSun(
  root: string,
  o: ResolvedDatasetOptions,
): Promise<DatasetListing> {
  const partitions = await sunPartitions(root);
  if (!partitions) {
    throw new DatasetError(
      `Expected a SUN397 folder (<letter>/<class>/<image> with Partitions/Training_01.txt … Testing_10.txt): no Partitions/Training_01.txt in ${root}`,
      join(root, "Partitions"),
    );
  }
  const k = String(o.partition).padStart(2, "0");
  const listName = `${o.split === "train" ? "Training" : "Testing"}_${k}.txt`;
  const lines = await readLines(
    join(partitions, listName),
    `SUN397 ${listName}`,
  );
  const classFile = join(partitions, "ClassName.txt");
  const classKeys = await exists(classFile)
    ? (await readLines(classFile, "SUN397 ClassName.txt")).map((l) =>
      l.replace(/^\/+|\/+$/g, "")
    )
    : [
      ...new Set(
        (await readLines(
          join(partitions, `Training_${k}.txt`),
          "SUN397 training list",
        ))
          .map((l) => classKey(l)),
      ),
    ].sort();
  const labelOf = new Map(classKeys.map((key, i) => [key, i]));
  // Images live beside Partitions/ or in a SUN397/ folder inside the root.
  const imageRoot = await isDir(join(root, "SUN397"))
    ? join(root, "SUN397")
    : root;
  const entries: DatasetEntry[] = lines.map((line) => {
    const key = classKey(line);
    const label = labelOf.get(key);
    if (label === undefined) {
      throw new DatasetError(
        `Expected SUN397 ${listName} to list images of known classes: class "${key}" is not in ClassName.txt`,
        join(partitions, listName),
      );
    }
    return { path: join(imageRoot, line.replace(/^\/+/, "")), label };
  });
  // "/a/abbey" → "abbey", "/b/bakery/shop" → "bakery/shop".
  const classNames = classKeys.map((key) => key.split("/").slice(1).join("/"));
  return {
    kind: "sun397",
    entries,
    classNames,
    splitNote: `partition ${o.partition} (${listName})`,
  };
}

function classKey(line: string): string {
  const parts = line.replace(/^\/+/, "").split("/");
  return parts.slice(0, -1).join("/");
}
