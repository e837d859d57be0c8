/**
 * Sequence-classification pooling the decoder architectures share (OPT, GPT-NeoX, BLOOM: transformers 4.43's
 * *ForSequenceClassification). GPT-2 and the LLaMA family keep their own copies, which read the same.
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../errors';
import type { Ctx } from './layers';
import type { ForwardInput } from './types';

/**
 * Each row's hidden state at (first pad position) - 1 modulo the length: the last non-pad token for right
 * padding, the last token when there is none. Without pad_token_id transformers only accepts batch size 1; with
 * prompt tuning (PEFT passes inputs_embeds, no input_ids) it takes the last position. x [B, S, C] -> [B, C].
 */
export function poolLastToken(padTokenId: number | null, className: string, ctx: Ctx, input: ForwardInput, x: tf.Tensor): tf.Tensor {
  const [B, S, C] = x.shape;
  if (padTokenId === null && B > 1 && !ctx.hooks.prefixEmbeds) {
    throw new EngineError('BAD_CONFIG', `${className} needs pad_token_id in config.json to classify batches of more than one row.`);
  }
  if (ctx.hooks.prefixEmbeds || padTokenId === null) return tf.slice(x, [0, S - 1, 0], [B, 1, C]).reshape([B, C]);
  const isPad = tf.equal(input.inputIds, padTokenId).toInt();
  const idx = tf.mod(tf.add(tf.argMax(isPad, 1), S - 1), S); // first pad - 1, mod S
  const pick = tf.oneHot(idx.toInt(), S).toFloat().reshape([B, S, 1]);
  return tf.sum(tf.mul(x, pick), 1); // [B, C]
}

/**
 * Positions from the attention mask as OPT and BLOOM take them: (cumsum(mask) - 1) * mask, so a row's real
 * tokens count 0, 1, ... past padding and padded slots get `padValue` (OPT: -1, BLOOM: 0); int32 [B, S].
 * `mask` [B, S] covers every position (virtual tokens included); `past` keys in front (prefix tuning, all
 * attended) shift the real positions, as transformers slices a mask that starts with their ones.
 */
export function maskPositions(mask: tf.Tensor, past: number, padValue: number): tf.Tensor {
  return tf.tidy(() => {
    const m = mask.toFloat();
    const counted = tf.add(tf.sub(tf.cumsum(m, 1), 1), past); // position of each real token
    return tf.add(tf.mul(counted, m), tf.mul(tf.sub(1, m), padValue)).toInt();
  });
}
