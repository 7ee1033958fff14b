import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { createOptimizer } from "./optimizer.ts";

await useBackend("cpu");

Deno.test("createOptimizer('lars') scales updates by η‖p‖/‖d‖ with momentum (hand-computed)", () => {
  const w = tf.variable(tf.tensor2d([[3, 4]]));
  const opt = createOptimizer("lars", new Map([["w", w]]), { weightDecay: 0 });
  const g = tf.tensor2d([[0.6, 0.8]]);
  // Step 1: q = 0.001·5/1, d = (0.003, 0.004), μ = d, p −= μ.
  opt.step({ w: g }, 1);
  assertClose(w, [[2.997, 3.996]]);
  // Step 2: ‖p‖ = 4.995, d = 0.004995·g, μ = 0.9μ + d.
  opt.step({ w: g }, 1);
  assertClose(w, [[2.991303, 3.988404]], { rtol: 1e-6 });
  tf.dispose([w, g]);
  opt.dispose();
});

Deno.test("createOptimizer('lars') adds weight decay before the adaptation", () => {
  const w = tf.variable(tf.tensor2d([[3, 4]]));
  const opt = createOptimizer("lars", new Map([["w", w]]), {
    weightDecay: 0.1,
  });
  const g = tf.zeros([1, 2]);
  // d = 0.1·p = (0.3, 0.4), ‖d‖ = 0.5, q = 0.001·5/0.5 = 0.01.
  opt.step({ w: g }, 1);
  assertClose(w, [[2.997, 3.996]]);
  tf.dispose([w, g]);
  opt.dispose();
});

Deno.test("createOptimizer() excludes rank-1 parameters from decay and LARS adaptation", () => {
  const w = tf.variable(tf.ones([2, 2]));
  const b = tf.variable(tf.tensor1d([1, 2]));
  const opt = createOptimizer(
    "lars",
    new Map([["fc.weight", w], ["bn.bias", b]]),
    {
      weightDecay: 0.1,
    },
  );
  assertEquals(opt.excluded, ["bn.bias"]);
  const gb = tf.tensor1d([0.5, 0.5]);
  const gw = tf.zeros([2, 2]);
  opt.step({ "fc.weight": gw, "bn.bias": gb }, 0.1);
  assertClose(b, [0.95, 1.95]); // plain momentum SGD step, no decay
  tf.dispose([w, b, gb, gw]);
  opt.dispose();
});

Deno.test("createOptimizer('sgd') matches PyTorch SGD with momentum and weight decay", () => {
  const w = tf.variable(tf.tensor2d([[1, -1]]));
  const opt = createOptimizer("sgd", new Map([["w", w]]), {
    weightDecay: 0.5,
    momentum: 0.9,
  });
  const g = tf.tensor2d([[1, 1]]);
  // d = g + 0.5p = (1.5, 0.5); μ = d; p = (0.85, −1.05)
  opt.step({ w: g }, 0.1);
  assertClose(w, [[0.85, -1.05]]);
  // d = (1.425, 0.475); μ = 0.9(1.5, 0.5) + d = (2.775, 0.925); p = (0.5725, −1.1425)
  opt.step({ w: g }, 0.1);
  assertClose(w, [[0.5725, -1.1425]]);
  tf.dispose([w, g]);
  opt.dispose();
});

/**
 * PyTorch's AdamW (`torch.optim.AdamW`, decoupled decay, bias-corrected
 * moments) in float64, one parameter at a time: the reference below.
 */
function adamwReference(
  p0: readonly number[],
  grads: readonly (readonly number[])[],
  lrs: readonly number[],
  o: { beta1: number; beta2: number; eps: number; weightDecay: number },
): number[] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, k) => {
    const t = k + 1;
    const lr = lrs[k];
    for (let i = 0; i < p.length; i++) {
      p[i] *= 1 - lr * o.weightDecay;
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * g[i];
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] * g[i];
      const mHat = m[i] / (1 - o.beta1 ** t);
      const vHat = v[i] / (1 - o.beta2 ** t);
      p[i] -= lr * mHat / (Math.sqrt(vHat) + o.eps);
    }
  });
  return p;
}

Deno.test("createOptimizer('adamw') follows PyTorch AdamW over several steps on vectors (float64 reference), without decay on rank-1 parameters", () => {
  const p0 = [1, -2, 0.5, 3];
  // Gradients that change sign and scale, and one learning rate per step
  // (a schedule), so the moments and the bias correction both matter.
  const grads = [
    [0.5, -1, 2, 0.01],
    [-0.25, -0.5, 1.5, 0.02],
    [1, 0.75, -2, -0.03],
    [0.1, -0.2, 0.3, 0.04],
    [-0.6, 0.9, 0.05, -0.05],
  ];
  const lrs = [0.1, 0.08, 0.05, 0.05, 0.02];
  const o = { beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.1 };
  const w = tf.variable(tf.tensor2d([p0])); // rank 2: decayed
  const b = tf.variable(tf.tensor1d(p0)); // rank 1: excluded from decay
  const opt = createOptimizer(
    "adamw",
    new Map<string, tf.Variable>([["w", w], ["b", b]]),
    {
      momentum: o.beta1,
      beta2: o.beta2,
      epsilon: o.eps,
      weightDecay: o.weightDecay,
    },
  );
  grads.forEach((g, k) => {
    const gw = tf.tensor2d([g]);
    const gb = tf.tensor1d(g);
    opt.step({ w: gw, b: gb }, lrs[k]);
    tf.dispose([gw, gb]);
    const seen = grads.slice(0, k + 1);
    assertClose(w, [adamwReference(p0, seen, lrs, o)], {
      rtol: 1e-5,
      message: `w after step ${k + 1}`,
    });
    assertClose(b, adamwReference(p0, seen, lrs, { ...o, weightDecay: 0 }), {
      rtol: 1e-5,
      message: `b after step ${k + 1}`,
    });
  });
  assertEquals(opt.state().step, grads.length);
  tf.dispose([w, b]);
  opt.dispose();
});

Deno.test("Optimizer.state()/loadState() resume identically and step() leaks nothing", async () => {
  const make = () => tf.variable(tf.tensor2d([[3, 4]]));
  const g = tf.tensor2d([[0.6, 0.8]]);
  const a = make();
  const optA = createOptimizer("lars", new Map([["w", a]]));
  optA.step({ w: g }, 1);
  const b = tf.variable(a);
  const optB = createOptimizer("lars", new Map([["w", b]]));
  optB.loadState(optA.state());
  assertEquals(optB.state().step, 1);
  await assertNoLeak(() => {
    optA.step({ w: g }, 1);
    optB.step({ w: g }, 1);
  });
  assertClose(b, a, { rtol: 0, atol: 0 });
  tf.dispose([a, b, g]);
  optA.dispose();
  optB.dispose();
});

Deno.test("Optimizer.loadState() leaves no tensor behind once the optimizer is disposed (a resumed run holds no more than a fresh one)", () => {
  for (const kind of ["lars", "sgd", "adamw"] as const) {
    const a = tf.variable(tf.tensor2d([[3, 4]]));
    const g = tf.tensor2d([[0.6, 0.8]]);
    const optA = createOptimizer(kind, new Map([["w", a]]));
    optA.step({ w: g }, 1);
    const before = tf.memory().numTensors;
    const optB = createOptimizer(kind, new Map([["w", a]]));
    optB.loadState(optA.state());
    optB.dispose();
    assertEquals(tf.memory().numTensors, before, kind);
    optA.dispose();
    tf.dispose([a, g]);
  }
});

Deno.test("Optimizer.step() holds one parameter's temporaries at a time, not every parameter's", async () => {
  // 8 parameters of 400 KB: LARS makes several temporaries per parameter.
  const params = new Map(
    Array.from({ length: 8 }, (_, i) => [
      `w${i}`,
      tf.variable(tf.randomNormal([1000, 100], 0, 1, "float32", i)),
    ]),
  );
  const grads = Object.fromEntries(
    [...params.keys()].map((k, i) => [
      k,
      tf.randomNormal([1000, 100], 0, 1, "float32", 10 + i),
    ]),
  );
  const one = 1000 * 100 * 4;
  const total = 8 * one;
  for (const kind of ["lars", "sgd", "adamw"] as const) {
    const opt = createOptimizer(kind, params);
    opt.step(grads, 0.1); // creates the slots
    const before = tf.memory().numBytes;
    const info = await tf.profile(() => opt.step(grads, 0.1));
    // Twenty temporaries of one parameter (LARS makes about 9, AdamW 15);
    // every parameter's at once is 8 times that (LARS: 72 before the fix).
    assertTrue(
      info.peakBytes - before < 20 * one,
      `${kind}: ${
        info.peakBytes - before
      } bytes above the state at the peak, of ${total} of parameters`,
    );
    opt.dispose();
  }
  tf.dispose([...params.values(), ...Object.values(grads)]);
});
