import * as tf from "@tensorflow/tfjs-core";
import { useBackend, Rng } from "@scaling-vicreg/backend";
import { TrainTransform } from "@scaling-vicreg/augment";
import { proceduralDataset, Loader } from "@scaling-vicreg/data";
import { createVicregModel, resolveConfig } from "@scaling-vicreg/train";
import { createOptimizer } from "@scaling-vicreg/optim/optimizer";
await useBackend("blas");
const config = resolveConfig({ flags: { preset: "tiny" } });
const model = createVicregModel(config);
const source = proceduralDataset({ n: 1024, size: 48, seed: 0, split: "train" });
const loader = new Loader(source, { batchSize: 64, seed: 0 });
const tt = new TrainTransform({ size: 32 });
type V = { name: string; kind: "sgd" | "adamw"; lr: number; std: boolean; w: tf.Variable; b: tf.Variable; opt: any; hits: number[] };
const variants: V[] = [];
for (const [kind, lr, std] of [["sgd", 0.025, false], ["sgd", 0.25, false], ["sgd", 1, false], ["sgd", 4, false], ["adamw", 1e-3, false], ["adamw", 1e-2, false], ["adamw", 3e-2, false], ["sgd", 0.025, true], ["sgd", 0.1, true], ["adamw", 1e-3, true]] as const) {
  const w = tf.variable(tf.zeros([128, 10])), b = tf.variable(tf.zeros([10]));
  variants.push({ name: `${kind} ${lr} ${std ? "std" : ""}`, kind, lr, std, w, b, opt: createOptimizer(kind, new Map([["w", w], ["b", b]]), { weightDecay: 0, momentum: 0.9 }), hits: [] });
}
let step = 0;
const rng = new Rng(0);
let featStats = "";
for (let epoch = 0; epoch < 4; epoch++) {
  for await (const batch of loader.batches(epoch)) {
    const v = tt.apply(batch.images, rng.fork(`${step}`));
    const f = tf.tidy(() => model.backbone.forward(v.view1, { training: true, updateRunningStats: false }).embedding);
    if (step === 0) { const m = tf.mean(f).dataSync()[0]; const n = tf.mean(tf.norm(f, 2, 1)).dataSync()[0]; featStats = `mean ${m.toFixed(3)} rownorm ${n.toFixed(3)}`; }
    const labels = tf.tensor1d(batch.labels!, "int32");
    const y = tf.oneHot(labels, 10);
    for (const p of variants) {
      const x = p.std ? tf.tidy(() => { const { mean, variance } = tf.moments(f, 0); return tf.div(tf.sub(f, mean), tf.sqrt(tf.add(variance, 1e-5))); }) : tf.clone(f);
      let correct = 0;
      const { value, grads } = tf.variableGrads(() => {
        const logits = tf.add(tf.matMul(x, p.w), p.b);
        correct = tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), "float32")).dataSync()[0]);
        return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1))) as tf.Scalar;
      }, [p.w, p.b]);
      p.opt.step({ w: grads[p.w.name], b: grads[p.b.name] }, p.lr);
      tf.dispose([value, ...Object.values(grads), x]);
      p.hits.push(correct / 64);
    }
    tf.dispose([v.view1, v.view2, f, labels, y]);
    step++;
  }
}
console.log(featStats);
for (const p of variants) {
  const avg = (a: number[]) => (a.reduce((s, x) => s + x, 0) / a.length).toFixed(3);
  console.log(p.name.padEnd(16), avg(p.hits.slice(0, 16)), avg(p.hits.slice(16, 32)), avg(p.hits.slice(32, 48)), avg(p.hits.slice(48)));
}
