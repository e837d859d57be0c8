import { describe, expect, it } from 'vitest';
import { EngineError } from '../src/engine/errors';
import {
  detectFormat, guessMapping, issueText, labelNames, parseDataFile, splitValidation, toExamples, tokenStats,
} from '../src/engine/train/data-parse';

function badData(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    expect((e as EngineError).code).toBe('BAD_DATA');
    return (e as Error).message;
  }
  throw new Error('expected BAD_DATA');
}

describe('CSV', () => {
  it('reads a header and rows with their line numbers, including quoted newlines', () => {
    const t = parseDataFile('d.csv', 'text,label\nhello,ham\n"two\nlines",spam\n\nbye,ham\n');
    expect(t.columns).toEqual(['text', 'label']);
    expect(t.rows).toEqual([
      { text: 'hello', label: 'ham' },
      { text: 'two\nlines', label: 'spam' },
      { text: 'bye', label: 'ham' },
    ]);
    expect(t.lines).toEqual([2, 3, 6]);
    expect(t.issues).toEqual([]);
  });

  it('reports a row with the wrong field count by line and row, and keeps the others', () => {
    const t = parseDataFile('d.csv', 'text,label\na,0\nb,1,extra\nc,1\n');
    expect(t.rows.length).toBe(2);
    expect(t.issues).toHaveLength(1);
    expect(issueText(t.issues[0])).toBe('d.csv line 3 (row 2): expected 2 fields (text, label), found 3');
  });

  it('reports an unclosed quote', () => {
    const t = parseDataFile('d.csv', 'text,label\nok,0\n"broken,1\n');
    expect(t.issues.length).toBeGreaterThan(0);
    expect(t.issues[0].line).toBe(3);
    expect(t.issues[0].message).toMatch(/never closed/);
  });

  it('rejects a file with a header only', () => {
    expect(badData(() => parseDataFile('d.csv', 'text,label\n'))).toMatch(/d\.csv: no rows found/);
  });

  it('rejects an empty file', () => {
    expect(badData(() => parseDataFile('d.csv', ''))).toMatch(/empty/);
  });
});

describe('JSONL', () => {
  it('reads objects, stringifies non-string values and collects columns in order', () => {
    const t = parseDataFile('d.jsonl', '{"text":"a","label":1}\n\n{"text":"b","label":0,"x":null}\n');
    expect(t.columns).toEqual(['text', 'label', 'x']);
    expect(t.rows[0]).toEqual({ text: 'a', label: '1' });
    expect(t.lines).toEqual([1, 3]);
  });

  it('says which line has invalid JSON or a non-object', () => {
    const t = parseDataFile('d.jsonl', '{"text":"a"}\n{"text": oops}\n[1,2]\n');
    expect(t.issues.map((i) => i.line)).toEqual([2, 3]);
    expect(t.issues[0].message).toMatch(/^invalid JSON/);
    expect(t.issues[1].message).toMatch(/expected a JSON object/);
  });

  it('fails when no line is usable, naming the first bad line', () => {
    expect(badData(() => parseDataFile('d.jsonl', 'not json\n'))).toMatch(/^d\.jsonl line 1: invalid JSON/);
  });
});

describe('TXT', () => {
  it('splits paragraphs at blank lines', () => {
    const t = parseDataFile('d.txt', 'one\ntwo\n\n\nthree\r\n');
    expect(t.rows).toEqual([{ text: 'one\ntwo' }, { text: 'three' }]);
    expect(t.lines).toEqual([1, 5]);
  });
});

describe('formats and mapping', () => {
  it('detects formats by extension', () => {
    expect(detectFormat('A.CSV')).toBe('csv');
    expect(detectFormat('x.jsonl')).toBe('jsonl');
    expect(detectFormat('x.txt')).toBe('txt');
    expect(badData(() => detectFormat('x.parquet'))).toMatch(/unsupported file type/);
  });

  it('guesses text+label for classification and prompt+response for instruction data', () => {
    expect(guessMapping(['message', 'label'], 'SEQ_CLS')).toEqual({ kind: 'text-label', text: 'message', label: 'label' });
    expect(guessMapping(['prompt', 'response'], 'CAUSAL_LM')).toEqual({ kind: 'prompt-response', prompt: 'prompt', response: 'response' });
    expect(guessMapping(['text'], 'CAUSAL_LM')).toEqual({ kind: 'text', text: 'text' });
  });

  it('orders integer labels numerically and string labels alphabetically', () => {
    expect(labelNames(['10', '2', '2', '1'])).toEqual(['1', '2', '10']);
    expect(labelNames(['spam', 'ham', 'spam'])).toEqual(['ham', 'spam']);
  });

  it('maps rows to examples, skipping empty cells with their line', () => {
    const t = parseDataFile('d.csv', 'text,label\nhi,spam\n,ham\nyo,ham\n');
    const r = toExamples(t, { kind: 'text-label', text: 'text', label: 'label' });
    expect(r.labels).toEqual(['ham', 'spam']);
    expect(r.examples).toEqual([{ text: 'hi', label: 1, line: 2 }, { text: 'yo', label: 0, line: 4 }]);
    expect(issueText(r.issues[0])).toBe('d.csv line 3: column "text" is empty');
  });

  it('uses given label ids and reports values outside them', () => {
    const t = parseDataFile('v.csv', 'text,label\nhi,spam\nyo,eggs\n');
    const r = toExamples(t, { kind: 'text-label', text: 'text', label: 'label' }, ['ham', 'spam']);
    expect(r.examples).toEqual([{ text: 'hi', label: 1, line: 2 }]);
    expect(issueText(r.issues[0])).toBe('v.csv line 3: label "eggs" is not one of ham, spam');
  });

  it('rejects a mapping onto a missing column or a single label', () => {
    const t = parseDataFile('d.csv', 'text,label\nhi,a\nyo,a\n');
    expect(badData(() => toExamples(t, { kind: 'text', text: 'body' }))).toMatch(/no column "body"; columns are text, label/);
    expect(badData(() => toExamples(t, { kind: 'text-label', text: 'text', label: 'label' }))).toMatch(/at least 2/);
  });
});

describe('split and token statistics', () => {
  it('splits deterministically and keeps every example exactly once', () => {
    const xs = Array.from({ length: 20 }, (_, i) => i);
    const a = splitValidation(xs, 0.2, 7);
    expect(a.validation).toHaveLength(4);
    expect([...a.train, ...a.validation].sort((p, q) => p - q)).toEqual(xs);
    expect(splitValidation(xs, 0.2, 7)).toEqual(a);
    expect(splitValidation(xs, 0, 7).validation).toEqual([]);
  });

  it('counts lengths and the rows truncation affects', () => {
    const encode = (s: string) => s.split(' ').map((_, i) => i);
    const ex = [{ text: 'a' }, { text: 'a b' }, { text: 'a b c' }, { prompt: 'a b ', response: 'c d' }];
    const s = tokenStats(ex, encode, 2);
    expect(s).toMatchObject({ count: 4, min: 1, max: 4, truncated: 2, maxLength: 2 });
    expect(s.mean).toBeCloseTo(2.5);
  });
});
