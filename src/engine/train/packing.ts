/**
 * Packing short tokenized examples into blocks of the max length, as TRL's SFTTrainer does with `packing=True`
 * (its classic ConstantLengthDataset, and the "wrapped" strategy of `pack_dataset`): every example is followed by
 * an EOS separator, the examples are concatenated in order, and the stream is cut into blocks of `maxLength`
 * tokens; an example may be split across two blocks. Unlike TRL's classic packing, the labels keep their masks
 * (-100 on prompts stays -100), and the last, shorter block is kept (a small dataset would lose a sizeable part
 * otherwise).
 *
 * Attention is NOT cut at example boundaries: a block is one sequence with one causal mask and positions that run
 * across it, so a token attends to the examples packed before it in its block (TRL's classic packing does the
 * same; its position-id based padding-free packing, which needs flash attention, does not). With short examples
 * this costs little and trains several examples per sequence instead of padding each.
 */
import { EngineError } from '../errors';
import { encodeExamples, type Example } from './data';
import { IGNORE_INDEX } from './loss';

/** A tokenized causal-LM example: ids and per-token labels (the id where trained on, -100 elsewhere). */
export interface PackItem {
  ids: number[];
  labels: number[];
}

export interface PackStats {
  /** Examples packed, and the blocks they became. */
  examples: number;
  blocks: number;
  /** Tokens in all blocks (separators included). */
  tokens: number;
  /** EOS separators added (examples that already ended in EOS get none). */
  separators: number;
  /** Blocks dropped because no token in them past position 0 is trained on (they would add no loss). */
  dropped: number;
}

/**
 * Packs examples into blocks of at most `maxLength` tokens (see the file comment). The separator after an example
 * is trained on when the example's last token is (its response runs up to the EOS, so the model learns to stop),
 * and masked otherwise.
 */
export function packExamples(items: readonly PackItem[], maxLength: number, eosTokenId: number | null | undefined): { blocks: PackItem[]; stats: PackStats } {
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new EngineError('BAD_ARGUMENT', `Packing needs a max length of at least 2 tokens, got ${maxLength}.`);
  if (eosTokenId == null) {
    throw new EngineError('BAD_CONFIG', "Packing separates examples with the end-of-sequence token, but the tokenizer has none (no eos_token); turn packing off or use a tokenizer with an eos_token.");
  }
  if (!items.length) throw new EngineError('BAD_DATA', 'There are no examples to pack.');
  const ids: number[] = [];
  const labels: number[] = [];
  let separators = 0;
  items.forEach((e, i) => {
    if (e.ids.length !== e.labels.length) throw new EngineError('BAD_DATA', `Example ${i + 1} has ${e.ids.length} ids but ${e.labels.length} labels; they must match one to one.`);
    ids.push(...e.ids);
    labels.push(...e.labels);
    if (e.ids[e.ids.length - 1] !== eosTokenId) {
      ids.push(eosTokenId);
      labels.push(e.labels.length && e.labels[e.labels.length - 1] !== IGNORE_INDEX ? eosTokenId : IGNORE_INDEX);
      separators += 1;
    }
  });
  const blocks: PackItem[] = [];
  let dropped = 0;
  for (let s = 0; s < ids.length; s += maxLength) {
    const l = labels.slice(s, s + maxLength);
    // Position 0 is never predicted by a causal LM, so a block trained on there only adds nothing.
    if (!l.slice(1).some((x) => x !== IGNORE_INDEX)) {
      dropped += 1;
      continue;
    }
    blocks.push({ ids: ids.slice(s, s + maxLength), labels: l });
  }
  if (!blocks.length) throw new EngineError('BAD_DATA', 'After packing no block has a token to train on; train on more than the prompts, or turn packing off.');
  const tokens = blocks.reduce((n, b) => n + b.ids.length, 0);
  return { blocks, stats: { examples: items.length, blocks: blocks.length, tokens, separators, dropped } };
}

/** One line about a packing: "12 examples packed into 3 blocks of up to 64 tokens (attention crosses examples)". */
export function describePacking(s: PackStats, maxLength: number): string {
  return `${s.examples} examples packed into ${s.blocks} block(s) of up to ${maxLength} tokens, ${s.separators} EOS separator(s) added` +
    `${s.dropped ? `, ${s.dropped} block(s) with nothing to train on dropped` : ''} (attention crosses the examples packed in a block, as TRL's packing)`;
}

/**
 * Packs causal-LM examples of any kind (text, prompt/response, or ids + labels from the chat encoder) for a
 * session: each is tokenized as the session would (EOS appended to text) but not truncated, since a long text is
 * split across blocks rather than cut; the blocks come back as pre-tokenized examples.
 */
export function packForTraining(
  examples: readonly Example[], o: { maxLength: number; encode?: (text: string) => number[]; eosTokenId: number | null | undefined },
): { examples: Example[]; stats: PackStats } {
  const enc = encodeExamples([...examples], { task: 'CAUSAL_LM', maxLength: Number.MAX_SAFE_INTEGER, encode: o.encode, eosTokenId: o.eosTokenId });
  const { blocks, stats } = packExamples(enc.map((e) => ({ ids: e.ids, labels: e.labels! })), o.maxLength, o.eosTokenId);
  return { examples: blocks.map((b) => ({ inputIds: b.ids, labels: b.labels })), stats };
}
