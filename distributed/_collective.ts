/**
 * Argument checks shared by the communicators.
 *
 * @module
 */

/**
 * Checks the arguments every implementation shares.
 *
 * @param call The method, for messages.
 * @param buf Its buffer.
 * @param types The accepted array types.
 */
export function checkCollectiveArray(
  call: string,
  buf: unknown,
  types:
    readonly (typeof Float32Array | typeof Float64Array | typeof Uint8Array)[],
): void {
  if (!types.some((type) => buf instanceof type)) {
    const names = types.map((type) => type.name).join(" or ");
    const got = (buf as { constructor?: { name?: string } })?.constructor
      ?.name ?? typeof buf;
    throw new TypeError(`${call}: expected a ${names}: received ${got}`);
  }
}

/**
 * Checks `op` and `root`.
 *
 * @param call The method, for messages.
 * @param size The group size.
 * @param op The reduction, when the call takes one.
 * @param root The root rank, when the call takes one.
 */
export function checkCollectiveArgs(
  call: string,
  size: number,
  op?: string,
  root?: number,
): void {
  if (op !== undefined && op !== "sum") {
    throw new RangeError(`${call}: op must be "sum": received "${op}"`);
  }
  if (
    root !== undefined &&
    (!Number.isInteger(root) || root < 0 || root >= size)
  ) {
    throw new RangeError(
      `${call}: root must be an integer rank in [0, ${size}): received ${root}`,
    );
  }
}
