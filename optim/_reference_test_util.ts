/**
 * Float64 reference loops of the update rules, written from PyTorch's
 * documented algorithms (torch.optim.SGD / AdamW) and VICReg's `LARS.step`,
 * element by element, for the tests to compare the tensor code with.
 *
 * @module
 */

/** A float64 SGD/LARS trajectory: p and μ after each of `grads`. */
export function referenceMomentum(
  p0: readonly number[],
  grads: readonly (readonly number[])[],
  lrs: readonly number[],
  o: { momentum: number; weightDecay: number; eta?: number },
): number[][] {
  let p = [...p0];
  let mu = p0.map(() => 0);
  const out: number[][] = [];
  grads.forEach((g, s) => {
    let d = g.map((gi, i) => gi + o.weightDecay * p[i]);
    if (o.eta !== undefined) {
      const pn = Math.hypot(...p);
      const dn = Math.hypot(...d);
      const q = pn > 0 && dn > 0 ? o.eta * pn / dn : 1;
      d = d.map((x) => x * q);
    }
    mu = mu.map((m, i) => o.momentum * m + d[i]);
    p = p.map((pi, i) => pi - lrs[s] * mu[i]);
    out.push([...p, ...mu]);
  });
  return out;
}

/** A float64 AdamW trajectory: p, m and v after each of `grads`. */
export function referenceAdamw(
  p0: readonly number[],
  grads: readonly (readonly number[])[],
  lrs: readonly number[],
  o: { beta1: number; beta2: number; epsilon: number; weightDecay: number },
): number[][] {
  let p = [...p0];
  let m = p0.map(() => 0);
  let v = p0.map(() => 0);
  const out: number[][] = [];
  grads.forEach((g, s) => {
    const t = s + 1;
    const lr = lrs[s];
    p = p.map((pi) => pi * (1 - lr * o.weightDecay));
    m = m.map((mi, i) => o.beta1 * mi + (1 - o.beta1) * g[i]);
    v = v.map((vi, i) => o.beta2 * vi + (1 - o.beta2) * g[i] * g[i]);
    p = p.map((pi, i) => {
      const mHat = m[i] / (1 - o.beta1 ** t);
      const vHat = v[i] / (1 - o.beta2 ** t);
      return pi - lr * mHat / (Math.sqrt(vHat) + o.epsilon);
    });
    out.push([...p, ...m, ...v]);
  });
  return out;
}
