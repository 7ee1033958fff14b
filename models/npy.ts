/**
 * numpy `.npy` I/O, kept here for compatibility: it lives in
 * `@scaling-vicreg/backend/npy`, the I/O home every member can reach.
 *
 * @module
 */
export * from "@scaling-vicreg/backend/npy";
