/**
 * Greedy generation for SEQ_2_SEQ_LM models (transformers' generate with num_beams 1, do_sample false): the
 * encoder runs once, the decoder starts from decoder_start_token_id and appends the argmax token until EOS or
 * maxNewTokens, over a key/value cache (Model.startSeq2SeqDecoding).
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../errors';
import type { ForwardHooks, Model } from '../models/types';
import type { PeftModel } from '../peft/model';

export interface Seq2SeqGenerateOptions {
  maxNewTokens: number;
  /** Stops after this token (not returned); default the model's eos_token_id. */
  eosTokenId?: number | null;
  /** Called with the ids so far after each new token (streaming); awaited, so the caller can yield. */
  onToken?: (ids: number[]) => void | Promise<void>;
  /** Checked before each next token; true ends the generation with what it has. */
  shouldStop?: () => boolean;
}

/** The hooks a PEFT model applies (none while it is disabled). */
export function generationHooks(peft: PeftModel): ForwardHooks {
  return peft.enabled ? peft.hooks(false) : {};
}

/** Frees what generationHooks made: a prompt method's virtual tokens may be a tensor made for them (never the variable itself). */
export function releaseGenerationHooks(hooks: ForwardHooks): void {
  const p = hooks.prefixEmbeds;
  if (p && !(p instanceof tf.Variable)) p.dispose();
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
      if (o.onToken) await o.onToken(out.slice());
      if (out.length >= o.maxNewTokens || dec.length >= dec.maxLength || o.shouldStop?.()) break;
      dec.next(tok);
    }
  } finally {
    dec.dispose();
  }
  return out;
}

/**
 * Text of generated ids as transformers' seq2seq recipes read it (`batch_decode(..., skip_special_tokens=True)`
 * before exact match / chrF / ROUGE; the text2text pipeline does the same): special tokens such as </s>, <pad> and
 * an untrained model's <extra_id_N> sentinels are left out. Ids past the tokenizer's vocabulary are left out too: a
 * model's embedding is often padded past it (t5-small: 32128 rows, 32100 tokens), an untrained adapter can pick
 * such an id, and transformers' fast tokenizers decode an id they have no token for to nothing.
 */
export function decodeKnown(tok: { decode(ids: number[], o?: { skipSpecialTokens?: boolean }): string; vocabSize?: number }, ids: number[]): string {
  const n = tok.vocabSize;
  return tok.decode(n === undefined ? ids : ids.filter((t) => t < n), { skipSpecialTokens: true });
}

/**
 * Greedy generation from source ids to text, with the hooks of the PEFT model as it is now (adapter on or off):
 * the playground's encoder-decoder generation. onText gets the decoded text so far after each token.
 */
export async function seq2seqText(
  peft: PeftModel, tok: { decode(ids: number[]): string; eosTokenId?: number | null; vocabSize?: number }, sourceIds: number[],
  o: { maxNewTokens: number; onText?: (text: string) => void | Promise<void>; shouldStop?: () => boolean },
): Promise<string> {
  const hooks = generationHooks(peft);
  const eos = tok.eosTokenId ?? peft.base.config.eosTokenId;
  try {
    const ids = await generateSeq2Seq(peft.base, sourceIds, hooks, {
      maxNewTokens: o.maxNewTokens, eosTokenId: eos, shouldStop: o.shouldStop,
      onToken: o.onText ? (so) => o.onText!(decodeKnown(tok, so)) : undefined,
    });
    return decodeKnown(tok, ids);
  } finally {
    releaseGenerationHooks(hooks);
  }
}
