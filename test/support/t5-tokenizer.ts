/**
 * A T5-style tokenizer.json for tests: Unigram pieces with the Metaspace pre-tokenizer and a post-processor that
 * appends </s> (id 1), as t5-small's does; <pad> 0, </s> 1, <unk> 2 as in T5's vocabulary, then "▁<word>" for each
 * word (score -2) and the extra pieces given.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function writeT5Tokenizer(dir: string, words: string[], extra: [string, number][] = [['\u2581', -3]]): void {
  const vocab = [['<pad>', 0], ['</s>', 0], ['<unk>', 0], ...words.map((w) => [`\u2581${w}`, -2]), ...extra];
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const meta = { type: 'Metaspace', replacement: '\u2581', add_prefix_space: true, prepend_scheme: 'always', split: true };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({
    version: '1.0', truncation: null, padding: null, normalizer: null,
    added_tokens: [special(0, '<pad>'), special(1, '</s>'), special(2, '<unk>')],
    pre_tokenizer: meta,
    post_processor: {
      type: 'TemplateProcessing', single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }, { Sequence: { id: 'B', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: meta,
    model: { type: 'Unigram', unk_id: 2, vocab, byte_fallback: false },
  }));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ tokenizer_class: 'T5Tokenizer', eos_token: '</s>', pad_token: '<pad>', unk_token: '<unk>' }));
}
