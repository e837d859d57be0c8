/**
 * src/engine/wasm-matmul.ts replaces tfjs-wasm's BatchMatMul (10x faster for transposed and batched products);
 * its results must equal the cpu backend's products for every transpose / batch / broadcast combination.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { useNodeBackend } from '../src/engine/io/node-backend';

describe('wasm BatchMatMul replacement', () => {
  it('gives the stock products for every transpose / batch combination', async () => {
    await useNodeBackend('cpu');
    const cases: [number[], number[], boolean, boolean][] = [
      [[5, 7], [7, 3], false, false], [[7, 5], [7, 3], true, false], [[5, 7], [3, 7], false, true],
      [[7, 5], [3, 7], true, true], [[2, 3, 5, 7], [2, 3, 7, 4], false, false], [[2, 3, 5, 7], [2, 3, 4, 7], false, true],
      [[6, 7, 5], [6, 7, 4], true, false], [[1, 5, 7], [1, 3, 7], false, true], [[2, 5, 7], [1, 7, 3], false, false],
    ];
    const inputs = cases.map(([sa, sb]) => [tf.randomNormal(sa, 0, 1, 'float32', 1), tf.randomNormal(sb, 0, 1, 'float32', 2)].map((t) => ({ data: t.dataSync().slice(), shape: t.shape })));
    const want = cases.map(([, , ta, tb], i) => tf.tidy(() => tf.matMul(tf.tensor(inputs[i][0].data, inputs[i][0].shape), tf.tensor(inputs[i][1].data, inputs[i][1].shape), ta, tb).dataSync().slice()));
    await useNodeBackend('wasm'); // installs the replacement kernel
    cases.forEach(([, , ta, tb], i) => {
      const got = tf.tidy(() => tf.matMul(tf.tensor(inputs[i][0].data, inputs[i][0].shape), tf.tensor(inputs[i][1].data, inputs[i][1].shape), ta, tb).dataSync().slice());
      expect(got.length).toBe(want[i].length);
      let m = 0;
      for (let j = 0; j < got.length; j++) m = Math.max(m, Math.abs(got[j] - want[i][j]));
      expect(m, `case ${JSON.stringify(cases[i])}`).toBeLessThan(1e-5);
    });
  });
});
