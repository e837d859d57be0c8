/**
 * Greedy generation for SEQ_2_SEQ_LM models (transformers' generate with num_beams 1, do_sample false): the
 * encoder runs once, the decoder starts from decoder_start_token_id and appends the argmax token until EOS or
 * maxNewTokens, over a key/value cache (Model.startSeq2SeqDecoding).
 */
import { EngineError } from '../errors';
import type { ForwardHooks, Model } from '../models/types';
import type { PeftModel } from '../peft/model';

export interface Seq2SeqGenerateOptions {
  maxNewTokens: number;
  /** Stops after this token (not returned); default the model's eos_token_id. */
  eosTokenId?: number | null;
}

/** The hooks a PEFT model applies (none while it is disabled). */
export function generationHooks(peft: PeftModel): ForwardHooks {
  return peft.enabled ? peft.hooks(false) : {};
}

/** Index of the largest value (the first on ties, as torch.argmax). */
function argmaxOf(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/** The generated target ids (without decoder_start_token_id and without the final EOS). */
export async function generateSeq2Seq(model: Model, sourceIds: number[], hooks: ForwardHooks, o: Seq2SeqGenerateOptions): Promise<number[]> {
  if (!model.startSeq2SeqDecoding) throw new EngineError('BAD_ARGUMENT', `${model.className} is not an encoder-decoder model; generate with a SEQ_2_SEQ_LM model.`);
  const eos = o.eosTokenId === undefined ? model.config.eosTokenId : o.eosTokenId;
  const dec = model.startSeq2SeqDecoding(sourceIds, hooks);
  const out: number[] = [];
  try {
    for (;;) {
      const tok = argmaxOf((await dec.logits.data()) as Float32Array);
      if (tok === eos || out.length >= o.maxNewTokens) break;
      out.push(tok);
      if (out.length >= o.maxNewTokens || dec.length >= dec.maxLength) break;
      dec.next(tok);
    }
  } finally {
    dec.dispose();
  }
  return out;
}
