// A stand-in decode worker for tests: it dies on the first request, the way
// a worker that runs out of memory or hits a WASM trap would.
// deno-lint-ignore no-explicit-any
const scope = self as any;
scope.onmessage = () => {
  throw new Error("simulated worker crash");
};
