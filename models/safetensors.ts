/**
 * safetensors I/O, kept here for compatibility: it lives in
 * `@scaling-vicreg/backend/safetensors`, the I/O home every member can reach.
 *
 * @module
 */
export * from "@scaling-vicreg/backend/safetensors";
