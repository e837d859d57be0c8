/** The playground's word diff: spans worked out by hand from the longest common subsequence of the words. */
import { describe, expect, it } from 'vitest';
import { wordDiff, words } from '../src/ui/diff';

describe('word diff', () => {
  it('splits words keeping the whitespace after each', () => {
    expect(words('a  b\nc')).toEqual(['a  ', 'b\n', 'c']);
    expect(words(' x')).toEqual([' ', 'x']);
    expect(words('')).toEqual([]);
  });

  it('marks the words outside the longest common subsequence', () => {
    // LCS of "the people of the nation" and "the people and the union": the, people, the.
    const d = wordDiff('the people of the nation', 'the people and the union');
    expect(d.a).toEqual([{ text: 'the people ', same: true }, { text: 'of ', same: false }, { text: 'the ', same: true }, { text: 'nation', same: false }]);
    expect(d.b).toEqual([{ text: 'the people ', same: true }, { text: 'and ', same: false }, { text: 'the ', same: true }, { text: 'union', same: false }]);
  });

  it('equal texts are one same span; an empty side is all different on the other', () => {
    expect(wordDiff('we shall', 'we shall')).toEqual({ a: [{ text: 'we shall', same: true }], b: [{ text: 'we shall', same: true }] });
    expect(wordDiff('', 'new words')).toEqual({ a: [], b: [{ text: 'new words', same: false }] });
  });

  it('an inserted word: trailing whitespace does not count as a difference', () => {
    const d = wordDiff('peace and freedom', 'peace, and lasting freedom ');
    expect(d.a).toEqual([{ text: 'peace ', same: false }, { text: 'and freedom', same: true }]);
    expect(d.b).toEqual([{ text: 'peace, ', same: false }, { text: 'and ', same: true }, { text: 'lasting ', same: false }, { text: 'freedom ', same: true }]);
  });
});
