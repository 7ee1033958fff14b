/**
 * A oneDNN CPU engine and stream, and the few calls every primitive is built
 * and run with: memory descriptors and memories, primitive descriptors and
 * primitives, executing them, and the filter's reorder to the layout a
 * primitive wants.
 *
 * @module
 */
import {
  ARG_DST,
  ARG_SRC,
  CPU,
  type DnnlSymbols,
  F32,
  MAX_DIMS,
  MD_BYTES,
  QUERY_IMPL_INFO,
  STREAM_IN_ORDER,
} from "./_dnnl_abi.ts";

/** One argument of a primitive's execution: `DNNL_ARG_*` and a memory. */
export type DnnlArg = [number, Deno.PointerValue];

/**
 * A filter's two memories: the user's one (`hwio`) and the one the
 * primitive reads or writes, the same one unless the primitive wants
 * another layout, in which case `reorder` converts between them.
 */
export interface FilterMemories {
  /** The memory over the user's filter. */
  user: Deno.PointerValue;
  /** The memory the primitive uses (`user` when no reorder is needed). */
  inner: Deno.PointerValue;
  /** Bytes of the primitive's layout (0 when no reorder is needed). */
  bytes: number;
  /** The reorder between the two, or `undefined` when none is needed. */
  reorder: Deno.PointerValue | undefined;
}

/** oneDNN's CPU engine and stream over a loaded library's symbols. */
export class DnnlContext {
  /** The library's bound functions. */
  readonly symbols: DnnlSymbols;
  #out = new BigUint64Array(1);
  #engine: Deno.PointerValue;
  #stream: Deno.PointerValue;
  // The filter in oneDNN's chosen layout, shared by every convolution (calls
  // are synchronous and one at a time).
  #blocked = new Float32Array(0);
  // The bf16 copies of a convolution's activation inputs, by slot (shared
  // the same way).
  #staging: Uint16Array[] = [];

  /**
   * Creates the CPU engine and its in-order stream.
   *
   * @param symbols The library's bound functions.
   * @throws {Error} When oneDNN cannot make either.
   */
  constructor(symbols: DnnlSymbols) {
    this.symbols = symbols;
    this.#engine = this.create(
      (out) => symbols.dnnl_engine_create(out, CPU, 0n),
      "engine",
    );
    this.#stream = this.create(
      (out) => symbols.dnnl_stream_create(out, this.#engine, STREAM_IN_ORDER),
      "stream",
    );
  }

  /**
   * Throws unless a oneDNN call succeeded.
   *
   * @param status The `dnnl_status_t` it returned.
   * @param what What it made, for the message.
   */
  check(status: number, what: string): void {
    if (status !== 0) throw new Error(`oneDNN ${what}: status ${status}`);
  }

  /**
   * Calls a oneDNN constructor that writes a handle through its first
   * argument.
   *
   * @param call The call, given the handle's slot.
   * @param what What it makes, for the message.
   * @returns The handle.
   */
  create(
    call: (out: BigUint64Array) => number,
    what: string,
  ): Deno.PointerValue {
    this.check(call(this.#out), what);
    return Deno.UnsafePointer.create(this.#out[0]) as Deno.PointerValue;
  }

  /**
   * A `dnnl_dims_t`.
   *
   * @param values The leading dimensions.
   * @returns Them, zero-padded to `DNNL_MAX_NDIMS`.
   */
  dims(...values: number[]): BigInt64Array {
    const d = new BigInt64Array(MAX_DIMS);
    values.forEach((v, i) => d[i] = BigInt(v));
    return d;
  }

  /**
   * A memory descriptor (float32 unless told).
   *
   * @param shape Its dimensions in oneDNN's order (`[N, C, H, W]`, …).
   * @param tag The `dnnl_format_tag_t` of its layout.
   * @param dataType The `dnnl_data_type_t` (`F32` or `BF16`).
   * @returns The descriptor's bytes.
   */
  memoryDesc(shape: number[], tag: number, dataType = F32): Uint8Array {
    const md = new Uint8Array(MD_BYTES);
    this.check(
      this.symbols.dnnl_memory_desc_init_by_tag!(
        md,
        shape.length,
        this.dims(...shape),
        dataType,
        tag,
      ),
      "memory descriptor",
    );
    return md;
  }

  /**
   * A memory without data (given per call with {@linkcode setData}).
   *
   * @param md Its descriptor, as bytes or as a pointer oneDNN returned.
   * @returns The memory.
   */
  memory(md: Uint8Array | Deno.PointerValue): Deno.PointerValue {
    const pointer = md instanceof Uint8Array ? Deno.UnsafePointer.of(md) : md;
    return this.create(
      (out) =>
        this.symbols.dnnl_memory_create(out, pointer, this.#engine, null),
      "memory",
    );
  }

  /**
   * A primitive descriptor for an operation descriptor.
   *
   * @param opDesc The operation descriptor's bytes.
   * @param hint The forward primitive descriptor (backward passes), or `null`.
   * @param attr Primitive attributes, or `null`.
   * @returns The primitive descriptor.
   */
  primitiveDesc(
    opDesc: Uint8Array,
    hint: Deno.PointerValue,
    attr: Deno.PointerValue = null,
  ): Deno.PointerValue {
    return this.create(
      (out) =>
        this.symbols.dnnl_primitive_desc_create!(
          out,
          opDesc,
          attr,
          this.#engine,
          hint,
        ),
      "primitive descriptor",
    );
  }

  /**
   * The name of the implementation a primitive descriptor chose.
   *
   * @param pd The primitive descriptor.
   * @returns E.g. `brgconv:avx512_core`, or `?`.
   */
  implOf(pd: Deno.PointerValue): string {
    const info = new BigUint64Array(1);
    this.check(
      this.symbols.dnnl_primitive_desc_query(pd, QUERY_IMPL_INFO, 0, info),
      "query",
    );
    const text = Deno.UnsafePointer.create(info[0]);
    return text === null ? "?" : new Deno.UnsafePointerView(text).getCString();
  }

  /**
   * A memory descriptor a primitive descriptor reports.
   *
   * @param pd The primitive descriptor.
   * @param query The `dnnl_query_t` (`QUERY_WEIGHTS_MD`, …).
   * @returns The descriptor, or `null` when it has none.
   */
  queryMd(pd: Deno.PointerValue, query: number): Deno.PointerValue {
    return this.symbols.dnnl_primitive_desc_query_md(pd, query, 0);
  }

  /**
   * The size of a memory descriptor's data.
   *
   * @param md The descriptor.
   * @returns Its bytes.
   */
  sizeOf(md: Deno.PointerValue): number {
    return Number(this.symbols.dnnl_memory_desc_get_size(md));
  }

  /**
   * A primitive.
   *
   * @param pd Its primitive descriptor.
   * @returns The primitive.
   */
  primitive(pd: Deno.PointerValue): Deno.PointerValue {
    return this.create(
      (out) => this.symbols.dnnl_primitive_create(out, pd),
      "primitive",
    );
  }

  /**
   * Runs a primitive on the stream and waits for it.
   *
   * @param prim The primitive.
   * @param args Its arguments.
   */
  execute(prim: Deno.PointerValue, args: DnnlArg[]): void {
    const bytes = new Uint8Array(16 * args.length);
    const view = new DataView(bytes.buffer);
    args.forEach(([arg, mem], i) => {
      view.setInt32(16 * i, arg, true);
      view.setBigUint64(
        16 * i + 8,
        BigInt(Deno.UnsafePointer.value(mem)),
        true,
      );
    });
    this.check(
      this.symbols.dnnl_primitive_execute(
        prim,
        this.#stream,
        args.length,
        bytes,
      ),
      "execute",
    );
    this.check(this.symbols.dnnl_stream_wait(this.#stream), "stream wait");
  }

  /**
   * Points a memory at an array for the next execution.
   *
   * @param mem The memory.
   * @param data The array (float32, or bf16 as 16-bit words).
   */
  setData(mem: Deno.PointerValue, data: Float32Array | Uint16Array): void {
    this.check(
      this.symbols.dnnl_memory_set_data_handle(mem, data),
      "data handle",
    );
  }

  /**
   * The filter's two memories for a primitive (see {@linkcode FilterMemories}).
   *
   * @param userMd The user's filter descriptor (`hwio`).
   * @param pd The primitive descriptor.
   * @param query What to ask it for (`QUERY_WEIGHTS_MD` or
   * `QUERY_DIFF_WEIGHTS_MD`).
   * @param toBlocked Whether the reorder goes user → primitive (else
   * primitive → user).
   * @returns The memories and the reorder.
   */
  filterMemories(
    userMd: Uint8Array,
    pd: Deno.PointerValue,
    query: number,
    toBlocked: boolean,
  ): FilterMemories {
    const s = this.symbols;
    const user = this.memory(userMd);
    const wanted = this.queryMd(pd, query);
    if (wanted === null || s.dnnl_memory_desc_equal(userMd, wanted) === 1) {
      return { user, inner: user, bytes: 0, reorder: undefined };
    }
    const inner = this.memory(wanted);
    const reorder = toBlocked
      ? this.reorder(userMd, wanted)
      : this.reorder(wanted, userMd);
    return { user, inner, bytes: this.sizeOf(wanted), reorder };
  }

  /**
   * Points a filter's inner memory at the shared blocked buffer (when it
   * has one) and, for a filter going in, reorders the user's filter into it.
   *
   * @param f The filter's memories.
   * @param toBlocked Whether to reorder user → primitive now.
   */
  prepareFilter(f: FilterMemories, toBlocked: boolean): void {
    if (f.reorder === undefined) return;
    this.setData(f.inner, this.#blockedOf(f.bytes));
    if (toBlocked) {
      this.execute(f.reorder, [[ARG_SRC, f.user], [ARG_DST, f.inner]]);
    }
  }

  /**
   * A reorder between two memory descriptors of the same logical tensor
   * (its layout, its data type or both: float32 → bf16 rounds to nearest
   * even).
   *
   * @param from The source's descriptor.
   * @param to The destination's descriptor.
   * @returns The reorder primitive.
   */
  reorder(
    from: Uint8Array | Deno.PointerValue,
    to: Uint8Array | Deno.PointerValue,
  ): Deno.PointerValue {
    const pointer = (md: Uint8Array | Deno.PointerValue) =>
      md instanceof Uint8Array ? Deno.UnsafePointer.of(md) : md;
    const pd = this.create(
      (out) =>
        this.symbols.dnnl_reorder_primitive_desc_create(
          out,
          pointer(from),
          this.#engine,
          pointer(to),
          this.#engine,
          null,
        ),
      "reorder descriptor",
    );
    return this.primitive(pd);
  }

  /**
   * A shared buffer of bf16 words for one of a convolution's converted
   * inputs, valid until the next call with the same slot.
   *
   * @param slot Which input (0 or 1).
   * @param elements How many bf16 values it holds.
   * @returns At least that many 16-bit words.
   */
  staging(slot: number, elements: number): Uint16Array {
    const current = this.#staging[slot];
    if (current !== undefined && current.length >= elements) return current;
    // Rounded up to an even count, so a float32 view of it is whole.
    const fresh = new Uint16Array(elements + (elements % 2));
    this.#staging[slot] = fresh;
    return fresh;
  }

  #blockedOf(bytes: number): Float32Array {
    if (this.#blocked.length * 4 < bytes) {
      // bf16 filters may take an odd number of 16-bit words.
      this.#blocked = new Float32Array(Math.ceil(bytes / 4));
    }
    return this.#blocked;
  }
}
