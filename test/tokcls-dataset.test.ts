/** The built-in tagging dataset's builder: hand-checked tags, and the shipped files are what the script makes. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LABELS, buildRows, loadGazetteers, tagWords, words } from '../scripts/build-tokcls-dataset';
import { loadSpeeches } from '../scripts/build-datasets';

describe('sotu-ner builder', () => {
  const g = loadGazetteers();
  it('tags states, first name + surname, dates, years and numbers in IOB2', () => {
    const ws = words('In March 4, 1933, Harry Truman went to New York with 5 million dollars and 3 per cent in 1945.');
    const tagged = Object.fromEntries(ws.map((w, i) => [`${i}:${w}`, tagWords(ws, g)[i]]).filter(([, t]) => t !== 'O'));
    expect(tagged).toEqual({
      '1:March': 'B-DATE', '2:4': 'I-DATE', '3:,': 'I-DATE', '4:1933': 'I-DATE',
      '6:Harry': 'B-PER', '7:Truman': 'I-PER', '10:New': 'B-LOC', '11:York': 'I-LOC',
      '13:5': 'B-NUM', '14:million': 'I-NUM', '17:3': 'B-NUM', '18:per': 'I-NUM', '19:cent': 'I-NUM', '21:1945': 'B-DATE',
    });
    // A first name at the start of a sentence, or alone, is not a person.
    expect(tagWords(words('Harry said May we go.'), g).every((t) => t === 'O')).toBe(true);
  });

  it('the shipped files are the builder\'s output (deterministic), tags are all in the label list', () => {
    const { train, validation } = buildRows(loadSpeeches(), g);
    const read = (f: string) => readFileSync(`public/datasets/sotu-ner/${f}`, 'utf8');
    expect(read('train.jsonl')).toBe(train.map((r) => JSON.stringify(r)).join('\n') + '\n');
    expect(read('validation.jsonl')).toBe(validation.map((r) => JSON.stringify(r)).join('\n') + '\n');
    expect(new Set([...train, ...validation].flatMap((r) => r.ner_tags)).size).toBeLessThanOrEqual(LABELS.length);
    expect([...train, ...validation].every((r) => r.ner_tags.every((t) => LABELS.includes(t)) && r.tokens.length === r.ner_tags.length)).toBe(true);
  });
});
