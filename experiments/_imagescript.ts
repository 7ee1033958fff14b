/**
 * imagescript, re-exported: `deno doc` fails resolving "imagescript" from a
 * documented module (its bundled `.d.ts` does not parse), and only resolves it
 * through a re-export like this one.
 *
 * @module
 */
export { Image } from "imagescript";
