import { writeNpy } from "@scaling-vicreg/models/npy";
await writeNpy("/tmp/rtw/imgs.npy", { shape: [5, 32, 32, 3], dtype: "float32", data: new Float32Array(5 * 32 * 32 * 3).map(() => Math.random()) });
