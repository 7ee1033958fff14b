/**
 * The packed cache: every image of a source decoded once, resized (shorter
 * side to `size`, Pillow bicubic) and centre-cropped to `size × size`, and
 * stored as raw uint8 `[N, size, size, 3]` shards beside a JSON manifest.
 *
 * The manifest holds a key — SHA-256 of the cache format, the size, and the
 * source's identity (for files: every path, byte size and modification time)
 * — and each shard's byte length and SHA-256. {@linkcode buildCache} reuses
 * a cache only when the key matches and every shard checks out; anything
 * else (a changed source file, other settings, a truncated or altered shard,
 * a missing manifest) rebuilds it. Every file is written to a temporary name
 * and renamed, and the manifest is removed first and written last, so an
 * interrupted build never leaves a manifest that points at wrong shards.
 *
 * @module
 */
import { sha256Hex, writeFileAtomic } from "@scaling-vicreg/backend/fs";
import { join } from "node:path";
import type { RgbImage } from "@scaling-vicreg/backend/image";
import { resizeShorterCenterCrop } from "@scaling-vicreg/augment/resize";
import { DatasetError } from "./decode.ts";
import { checkIndex, type ImageSource } from "./source.ts";

/** The cache format version; part of every key. */
export const CACHE_FORMAT_VERSION = 1;

const MANIFEST = "manifest.json";

/** One shard file of a cache. */
export interface CacheShard {
  /** File name inside the cache folder. */
  file: string;
  /** Images in the shard. */
  count: number;
  /** Its exact length in bytes (`count · size · size · 3`). */
  bytes: number;
  /** SHA-256 of its bytes, hex. */
  sha256: string;
}

/** The JSON manifest of a cache (`manifest.json`). */
export interface CacheManifest {
  /** {@linkcode CACHE_FORMAT_VERSION}. */
  version: number;
  /** Changes whenever the source or the settings change. */
  key: string;
  /** Side of the stored square images. */
  size: number;
  /** Number of images. */
  count: number;
  /** Images per shard (the last may hold fewer). */
  shardSize: number;
  /** The shards, in order. */
  shards: CacheShard[];
  /** Labels by index, or `null` for an unlabeled source. */
  labels: number[] | null;
  /** Class names by label, when labelled. */
  classNames?: string[];
  /** Source file of each image, when the source is a file list. */
  paths?: string[];
  /** The source's `describe()` at build time. */
  source: string;
  /** Files the source skipped while the cache was built. */
  skipped?: { path: string; reason: string }[];
}

/** Options of {@linkcode buildCache}. */
export interface BuildCacheOptions {
  /** Side of the stored square images (pixels). */
  size: number;
  /** The cache folder (created if missing). */
  out: string;
  /**
   * Images per shard file.
   * @default {1024}
   */
  shardSize?: number;
  /**
   * Images decoded concurrently.
   * @default {8}
   */
  concurrency?: number;
  /**
   * Called after each shard is written, with images done and total.
   * @default {undefined}
   */
  onProgress?: (done: number, total: number) => void;
}

/** Defaults of {@linkcode BuildCacheOptions}. */
export const DEFAULT_BUILD_CACHE_OPTIONS: Readonly<
  { shardSize: number; concurrency: number }
> = Object
  .freeze({ shardSize: 1024, concurrency: 8 });

/** Options of {@linkcode openCache}. */
export interface OpenCacheOptions {
  /**
   * Check every shard's SHA-256 (reads the whole cache once), not only its length.
   * @default {true}
   */
  verify?: boolean;
  /**
   * Reject the cache unless its key is this one.
   * @default {undefined}
   */
  expectedKey?: string;
}

/** An opened packed cache: an {@linkcode ImageSource} of `size × size` images. */
export interface PackedCache extends ImageSource {
  /** The cache folder. */
  readonly dir: string;
  /** Its manifest. */
  readonly manifest: CacheManifest;
  /** True when {@linkcode buildCache} wrote it, false when it reused it. */
  readonly rebuilt: boolean;
  /** Why it was (re)built, or "reused". */
  readonly reason: string;
  /** Closes the shard files. */
  close(): void;
}

/** A source that lists its files (as a `FileDataset` from `openDataset` does). */
interface FileListLike {
  kind: string;
  root: string;
  split: string;
  entries: readonly { path: string; label?: number }[];
  skipped?: readonly { path: string; reason: string }[];
}

function asFileList(source: ImageSource): FileListLike | undefined {
  const s = source as Partial<FileListLike>;
  return Array.isArray(s.entries) && s.entries.length === source.length &&
      typeof s.root === "string" && s.root !== ""
    ? s as FileListLike
    : undefined;
}

/**
 * The key of a cache of `source` at `size`: SHA-256 over the format version,
 * the size, the resize method and the source's identity — for a file list,
 * each file's path, byte size and modification time; otherwise its
 * `describe()` line (which for the procedural set names count, size, seed
 * and split).
 *
 * @example
 * ```ts
 * import { cacheKey, proceduralDataset } from "@scaling-vicreg/data";
 * const a = await cacheKey(proceduralDataset({ n: 10 }), 32);
 * console.log(a === await cacheKey(proceduralDataset({ n: 11 }), 32)); // false
 * ```
 *
 * @param source The source.
 * @param size The stored side.
 * @returns 64 hex digits.
 */
export async function cacheKey(
  source: ImageSource,
  size: number,
): Promise<string> {
  const parts: string[] = [
    `vicreg-cache v${CACHE_FORMAT_VERSION}`,
    `size ${size}`,
    "resize shorter side, Pillow bicubic, centre crop",
    `count ${source.length}`,
  ];
  const files = asFileList(source);
  if (files) {
    parts.push(`files ${files.kind} ${files.root} ${files.split}`);
    const stats = await Promise.all(files.entries.map(async (e) => {
      try {
        const st = await Deno.stat(e.path);
        return `${e.path}\t${e.label ?? ""}\t${st.size}\t${
          st.mtime?.getTime() ?? 0
        }`;
      } catch {
        return `${e.path}\t${e.label ?? ""}\tmissing`;
      }
    }));
    parts.push(...stats);
  } else {
    parts.push(`source ${source.describe()}`);
  }
  return await sha256Hex(parts.join("\n"));
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 1 || size > 4096) {
    throw new RangeError(
      `Expected cache size to be an integer in [1, 4096]: received ${size}`,
    );
  }
}

async function readManifest(dir: string): Promise<CacheManifest> {
  const path = join(dir, MANIFEST);
  let manifest: CacheManifest;
  try {
    manifest = JSON.parse(await Deno.readTextFile(path));
  } catch (cause) {
    throw new DatasetError(
      `Expected a cache manifest at ${path}: missing or not JSON`,
      path,
      { cause },
    );
  }
  const ok = manifest && manifest.version === CACHE_FORMAT_VERSION &&
    typeof manifest.key === "string" && Number.isInteger(manifest.size) &&
    Number.isInteger(manifest.count) && Array.isArray(manifest.shards) &&
    manifest.shards.reduce((n, s) => n + s.count, 0) === manifest.count &&
    (manifest.labels === null || manifest.labels.length === manifest.count);
  if (!ok) {
    throw new DatasetError(
      `Expected a version ${CACHE_FORMAT_VERSION} cache manifest at ${path}: fields are missing or inconsistent`,
      path,
    );
  }
  return manifest;
}

async function verifyShards(
  dir: string,
  manifest: CacheManifest,
  full: boolean,
): Promise<void> {
  const image = manifest.size * manifest.size * 3;
  for (const shard of manifest.shards) {
    const path = join(dir, shard.file);
    let length: number;
    try {
      length = (await Deno.stat(path)).size;
    } catch (cause) {
      throw new DatasetError(`Cache shard ${path} is missing`, path, { cause });
    }
    if (shard.bytes !== shard.count * image || length !== shard.bytes) {
      throw new DatasetError(
        `Cache shard ${path} is damaged: expected ${
          shard.count * image
        } bytes, found ${length}`,
        path,
      );
    }
    if (full && await sha256Hex(await Deno.readFile(path)) !== shard.sha256) {
      throw new DatasetError(
        `Cache shard ${path} is damaged: its SHA-256 does not match the manifest`,
        path,
      );
    }
  }
}

/**
 * Opens a packed cache, checking its manifest and every shard's length (and,
 * by default, SHA-256) first.
 *
 * @example
 * ```ts ignore
 * import { openCache } from "@scaling-vicreg/data/cache";
 * const cache = await openCache("cache/");
 * const image = await cache.get(0); // [size, size, 3]
 * cache.close();
 * ```
 *
 * @param dir The cache folder.
 * @param options Verification and an expected key.
 * @returns The cache.
 * @throws {DatasetError} If the manifest is missing or invalid, a shard is
 *   missing, truncated or altered, or the key is not `expectedKey`.
 */
export async function openCache(
  dir: string,
  options?: OpenCacheOptions,
): Promise<PackedCache> {
  const manifest = await readManifest(dir);
  if (
    options?.expectedKey !== undefined && manifest.key !== options.expectedKey
  ) {
    throw new DatasetError(
      `Cache ${dir} is stale: its key does not match the source and settings (rebuild it)`,
      join(dir, MANIFEST),
    );
  }
  await verifyShards(dir, manifest, options?.verify ?? true);
  return new CacheSource(dir, manifest, false, "reused");
}

class CacheSource implements PackedCache {
  readonly dir: string;
  readonly manifest: CacheManifest;
  readonly rebuilt: boolean;
  readonly reason: string;
  readonly classNames?: readonly string[];
  #files = new Map<number, Deno.FsFile>();
  #locks = new Map<number, Promise<unknown>>();
  #imageBytes: number;

  constructor(
    dir: string,
    manifest: CacheManifest,
    rebuilt: boolean,
    reason: string,
  ) {
    this.dir = dir;
    this.manifest = manifest;
    this.rebuilt = rebuilt;
    this.reason = reason;
    if (manifest.classNames) this.classNames = manifest.classNames;
    this.#imageBytes = manifest.size * manifest.size * 3;
  }

  get length(): number {
    return this.manifest.count;
  }

  label(index: number): number | undefined {
    checkIndex(index, this.length, `cache ${this.dir}`);
    return this.manifest.labels?.[index];
  }

  get(index: number): Promise<RgbImage> {
    checkIndex(index, this.length, `cache ${this.dir}`);
    const { shardSize, size } = this.manifest;
    const s = Math.floor(index / shardSize);
    const offset = (index - s * shardSize) * this.#imageBytes;
    // One handle per shard; seek + read must not interleave, so reads on a
    // shard are chained.
    const previous = this.#locks.get(s) ?? Promise.resolve();
    const read = previous.catch(() => {}).then(async () => {
      let file = this.#files.get(s);
      if (!file) {
        file = await Deno.open(join(this.dir, this.manifest.shards[s].file), {
          read: true,
        });
        this.#files.set(s, file);
      }
      await file.seek(offset, Deno.SeekMode.Start);
      const data = new Uint8Array(this.#imageBytes);
      let n = 0;
      while (n < data.length) {
        const got = await file.read(data.subarray(n));
        if (got === null) {
          const path = join(this.dir, this.manifest.shards[s].file);
          throw new DatasetError(
            `Cache shard ${path} ended early (truncated after opening)`,
            path,
          );
        }
        n += got;
      }
      return { width: size, height: size, data };
    });
    this.#locks.set(s, read);
    return read;
  }

  describe(): string {
    const m = this.manifest;
    return `cache ${this.dir}: ${m.count} images ${m.size}×${m.size} of ${m.source}`;
  }

  close(): void {
    for (const file of this.#files.values()) file.close();
    this.#files.clear();
  }
}

/**
 * Builds the packed cache of `source` in `out`, or reuses the one there if
 * its key matches and its shards check out (length and SHA-256). A stale or
 * damaged cache is rebuilt, never used.
 *
 * @example
 * ```ts
 * import { buildCache, proceduralDataset } from "@scaling-vicreg/data";
 * const out = await Deno.makeTempDir();
 * const cache = await buildCache(proceduralDataset({ n: 20 }), { size: 32, out });
 * console.log(cache.length, (await cache.get(0)).width, cache.rebuilt); // 20 32 true
 * cache.close();
 * await Deno.remove(out, { recursive: true });
 * ```
 *
 * @param source The images (decoded on demand).
 * @param options Size, output folder, shard size, concurrency, progress.
 * @returns The opened cache; `rebuilt` and `reason` say what happened.
 */
export async function buildCache(
  source: ImageSource,
  options: BuildCacheOptions,
): Promise<PackedCache> {
  const { size, out, shardSize, concurrency, onProgress } = {
    ...DEFAULT_BUILD_CACHE_OPTIONS,
    ...options,
  };
  checkSize(size);
  if (!Number.isInteger(shardSize) || shardSize < 1) {
    throw new RangeError(
      `Expected cache option "shardSize" to be a positive integer: received ${shardSize}`,
    );
  }
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(
      `Expected cache option "concurrency" to be a positive integer: received ${concurrency}`,
    );
  }
  const key = await cacheKey(source, size);
  let reason = "no cache yet";
  try {
    const cache = await openCache(out, { expectedKey: key });
    return cache;
  } catch (error) {
    if (!(error instanceof DatasetError)) throw error;
    const hadManifest = await Deno.stat(join(out, MANIFEST)).then(
      () => true,
      () => false,
    );
    if (hadManifest) reason = error.message;
  }

  await Deno.mkdir(out, { recursive: true });
  await Deno.remove(join(out, MANIFEST)).catch(() => {});
  const imageBytes = size * size * 3;
  const shards: CacheShard[] = [];
  const labels: number[] = [];
  let labelled = true;
  for (let start = 0, s = 0; start < source.length; start += shardSize, s++) {
    const count = Math.min(shardSize, source.length - start);
    const buffer = new Uint8Array(count * imageBytes);
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const k = next++;
        const image = await source.get(start + k);
        const square = image.width === size && image.height === size
          ? image
          : resizeShorterCenterCrop(image, size);
        buffer.set(square.data, k * imageBytes);
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(concurrency, count) }, worker),
    );
    for (let k = 0; k < count; k++) {
      const label = source.label(start + k);
      if (label === undefined) labelled = false;
      labels.push(label ?? -1);
    }
    const file = `shard-${String(s).padStart(5, "0")}.u8`;
    await writeFileAtomic(join(out, file), buffer);
    shards.push({
      file,
      count,
      bytes: buffer.length,
      sha256: await sha256Hex(buffer),
    });
    onProgress?.(start + count, source.length);
  }
  // Shards of an earlier, larger build would otherwise linger.
  const keep = new Set(shards.map((s) => s.file));
  for await (const entry of Deno.readDir(out)) {
    if (/^shard-\d+\.u8$/.test(entry.name) && !keep.has(entry.name)) {
      await Deno.remove(join(out, entry.name));
    }
  }
  const files = asFileList(source);
  const manifest: CacheManifest = {
    version: CACHE_FORMAT_VERSION,
    key,
    size,
    count: source.length,
    shardSize,
    shards,
    labels: labelled ? labels : null,
    ...(source.classNames ? { classNames: [...source.classNames] } : {}),
    ...(files ? { paths: files.entries.map((e) => e.path) } : {}),
    source: source.describe(),
    ...(files?.skipped?.length ? { skipped: [...files.skipped] } : {}),
  };
  await writeFileAtomic(join(out, MANIFEST), JSON.stringify(manifest) + "\n");
  return new CacheSource(out, manifest, true, reason);
}
