/**
 * torch.nn.LSTM(input, hidden, num_layers, dropout, bidirectional=True, batch_first=True) over one sequence, as
 * P-tuning's PromptEncoder runs it on its virtual-token embeddings. Per direction and step (PyTorch's gate
 * order i, f, g, o):
 *   gates = x_t W_ih^T + b_ih + h W_hh^T + b_hh;  i, f, o = sigmoid(...), g = tanh(...)
 *   c = f * c + i * g;  h = o * tanh(c)        (h and c start at zero)
 * The output at t is cat(forward h_t, backward h_t); a layer after the first reads the one before it, with
 * dropout between layers while training. Built from matMul, slice, split, sigmoid, tanh, mul, add and concat,
 * whose gradients every tfjs backend has (cpu, wasm, webgl, webgpu): no fused RNN kernel is needed.
 */
import * as tf from '@tensorflow/tfjs';
import { dropout } from '../../ops/fused';
import type { Rng } from '../../random';
import type { EncoderState } from '../prompt-tuning/encoder';

interface Direction {
  wIh: tf.Variable; // [4H, in]
  wHh: tf.Variable; // [4H, H]
  bIh: tf.Variable; // [4H]
  bHh: tf.Variable; // [4H]
}

export class BiLstm {
  private readonly layers: { fwd: Direction; bwd: Direction }[] = [];
  private readonly hidden: number;
  private readonly dropout: number;

  /** Creates the parameters in `state` under `name` with nn.LSTM's names (weight_ih_l0, ..._reverse). */
  constructor(state: EncoderState, name: string, o: { input: number; hidden: number; numLayers: number; dropout: number }, rng: Rng) {
    this.hidden = o.hidden;
    this.dropout = o.dropout;
    const H = o.hidden;
    const k = 1 / Math.sqrt(H);
    for (let l = 0; l < o.numLayers; l++) {
      const inF = l === 0 ? o.input : 2 * H;
      const dir = (suffix: string): Direction => ({
        wIh: state.uniform(`${name}.weight_ih_l${l}${suffix}`, [4 * H, inF], k, rng),
        wHh: state.uniform(`${name}.weight_hh_l${l}${suffix}`, [4 * H, H], k, rng),
        bIh: state.uniform(`${name}.bias_ih_l${l}${suffix}`, [4 * H], k, rng),
        bHh: state.uniform(`${name}.bias_hh_l${l}${suffix}`, [4 * H], k, rng),
      });
      this.layers.push({ fwd: dir(''), bwd: dir('_reverse') });
    }
  }

  /** x [T, input] -> [T, 2 * hidden]; `seed` draws the inter-layer dropout masks while training. */
  forward(x: tf.Tensor, training: boolean, seed: () => number): tf.Tensor {
    let h = x;
    this.layers.forEach((layer, l) => {
      // nn.LSTM applies dropout to the outputs of every layer but the last.
      if (l > 0 && training && this.dropout > 0) h = dropout(h, this.dropout, seed());
      h = tf.concat([this.run(h, layer.fwd, false), this.run(h, layer.bwd, true)], 1);
    });
    return h;
  }

  /** One direction over the sequence: [T, in] -> [T, H], row t = h after reading x_t. */
  private run(x: tf.Tensor, d: Direction, reverse: boolean): tf.Tensor {
    const T = x.shape[0]!;
    const H = this.hidden;
    const xi = tf.add(tf.matMul(x as tf.Tensor2D, d.wIh, false, true), tf.add(d.bIh, d.bHh)); // [T, 4H]
    let h: tf.Tensor = tf.zeros([1, H]);
    let c: tf.Tensor = tf.zeros([1, H]);
    const out: tf.Tensor[] = new Array(T);
    for (let s = 0; s < T; s++) {
      const t = reverse ? T - 1 - s : s;
      const gates = tf.add(tf.slice(xi, [t, 0], [1, 4 * H]), tf.matMul(h as tf.Tensor2D, d.wHh, false, true)); // [1, 4H]
      const [gi, gf, gg, go] = tf.split(gates, 4, 1);
      c = tf.add(tf.mul(tf.sigmoid(gf), c), tf.mul(tf.sigmoid(gi), tf.tanh(gg)));
      h = tf.mul(tf.sigmoid(go), tf.tanh(c));
      out[t] = h;
    }
    return tf.concat(out, 0);
  }
}
