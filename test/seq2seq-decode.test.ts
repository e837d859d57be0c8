/**
 * Generated ids become text as transformers' seq2seq recipes decode them before scoring
 * (`batch_decode(preds, skip_special_tokens=True)`): </s>, <pad> and the <extra_id_N> sentinels an untrained T5
 * emits are not part of the text that exact match, chrF and ROUGE-L compare, nor of the playground's output.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import { decodeKnown } from '../src/engine/train/seq2seq-generate';

const T5 = join(import.meta.dirname, '..', 'public', 'models', 'sotu-t5');

describe('decodeKnown', () => {
  it('leaves out special tokens and ids past the vocabulary', async () => {
    const tok = await loadTokenizerFromDir(T5);
    const word = tok.encode('hello', { addSpecialTokens: false });
    const sentinel = tok.tokenToId('<extra_id_0>')!;
    const eos = tok.eosTokenId!;
    const pad = tok.padTokenId!;
    expect(sentinel).toBeDefined();
    const plain = tok.decode(word);
    expect(plain.trim()).toBe('hello');
    // With the special tokens kept, the sentinel and </s> would be part of the scored text.
    expect(tok.decode([sentinel, ...word, eos])).toContain('<extra_id_0>');
    expect(decodeKnown(tok, [pad, sentinel, ...word, eos])).toBe(plain);
    expect(decodeKnown(tok, [...word, tok.vocabSize + 3])).toBe(plain);
  });
});
