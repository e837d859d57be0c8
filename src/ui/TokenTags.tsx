/**
 * Token classification views: a sentence with its IOB2 entity spans coloured by type (the Data panel's sample), and
 * the playground's tagger (the text tagged word by word with the adapter and without it).
 */
import { useState } from 'react';
import { entitySpans, parseLabelList } from '../engine/train/tokcls-data';
import { tagText, type TagResult } from '../state/actions';
import { projectActions as P, useProject } from '../state/project';
import type { DataSummary } from '../worker/protocol';
import { Check, ErrorNote } from './controls';
import { thousands } from './format';

/** A stable colour slot per entity type (PER, LOC, ...), so a type keeps its colour across views. */
function typeSlot(type: string): number {
  let h = 0;
  for (const ch of type) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return h % 6;
}

/** Words with their entity spans marked: each span coloured by type, its type after it. */
export function TaggedWords(props: { words: string[]; tags: string[]; testId?: string }) {
  const spans = entitySpans(props.tags);
  const out: React.ReactNode[] = [];
  let i = 0;
  for (const s of spans) {
    if (s.start > i) out.push(<span key={`o${i}`}>{props.words.slice(i, s.start).join(' ')} </span>);
    out.push(
      <mark key={`e${s.start}`} className={`entity entity-${typeSlot(s.type)}`} data-type={s.type} data-testid="entity">
        {props.words.slice(s.start, s.end).join(' ')}
        <small className="entity-type">{s.type}</small>
      </mark>,
      ' ',
    );
    i = s.end;
  }
  if (i < props.words.length) out.push(<span key={`o${i}`}>{props.words.slice(i).join(' ')}</span>);
  return (
    <p className="tagged" data-testid={props.testId}>
      {out}
    </p>
  );
}

/** The playground for TOKEN_CLS runs. */
export function TokenTags(props: { ready: boolean }) {
  const [text, setText] = useState('In March 1933 Franklin Roosevelt spoke to the people of New York about 15 million workers.');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<TagResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  return (
    <>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          void tagText(text)
            .then((r) => (typeof r === 'string' ? setError(r) : setResult(r)))
            .finally(() => setBusy(false));
        }}
      >
        <textarea aria-label="Text to tag" data-testid="playground-input" rows={3} value={text} onChange={(e) => setText(e.target.value)} />
        <div className="row">
          <button type="submit" className="primary" data-testid="playground-run" disabled={!props.ready || busy}>
            {busy ? 'Running…' : 'Tag'}
          </button>
        </div>
      </form>
      {error && <ErrorNote testId="playground-error">{error}</ErrorNote>}
      {result && (
        <div className="side-by-side">
          <div>
            <h3>Adapter on</h3>
            <TaggedWords words={result.words} tags={result.withAdapter} testId="tags-on" />
          </div>
          <div>
            <h3>Adapter off (base model)</h3>
            <p className="hint">The base model's token-classification head is freshly initialised, so these tags are noise.</p>
            <TaggedWords words={result.words} tags={result.withoutAdapter} testId="tags-off" />
          </div>
        </div>
      )}
    </>
  );
}

/** The Data panel's TOKEN_CLS part: the label list (editable, id order), label-all-sub-tokens, stats and one sentence. */
export function TokenClsData(props: { summary: DataSummary }) {
  const t = props.summary.tokcls;
  const settings = useProject((s) => s.tokcls);
  const [draft, setDraft] = useState<string | null>(null);
  const [bad, setBad] = useState<string | null>(null);
  const shown = draft ?? props.summary.labels.join(',');
  const apply = () => {
    if (draft === null) return;
    try {
      const list = draft.trim() ? parseLabelList(draft) : null;
      setBad(null);
      setDraft(null);
      P.setTokcls({ labelList: list });
    } catch (e) {
      setBad((e as Error).message);
    }
  };
  const stat = (s: NonNullable<DataSummary['tokcls']>['train'], what: string) => (
    <li>
      {what}: {thousands(s.sentences)} sentences, {thousands(s.words)} words ({(100 * s.oRate).toFixed(0)}% O); entities{' '}
      {Object.entries(s.entities).sort().map(([k, v]) => `${k} ${thousands(v)}`).join(', ') || 'none'}
      {s.truncated > 0 && <span className="warn"> · {thousands(s.truncated)} sentences longer than max length are truncated</span>}
    </li>
  );
  return (
    <div className="tokcls-data" data-testid="tokcls-data">
      <label className="field wide">
        <span className="label">label list (id order, like --label-list)</span>
        <input
          className="mono"
          data-testid="label-list"
          value={shown}
          onChange={(e) => setDraft(e.target.value)}
          onBlur={apply}
          onKeyDown={(e) => e.key === 'Enter' && apply()}
          title="Comma-separated tags in id order; empty: the dataset's own list (or the data's tags sorted)."
        />
      </label>
      {bad && <p className="warn small">{bad}</p>}
      {settings.labelList && (
        <button type="button" className="link" onClick={() => P.setTokcls({ labelList: null })}>
          Use the dataset's label list
        </button>
      )}
      <Check
        label="label all sub-tokens"
        checked={settings.labelAllTokens}
        onChange={(labelAllTokens) => P.setTokcls({ labelAllTokens })}
        hint="run_ner.py's label_all_tokens: every sub-token of a word is scored (B- becomes I- after the first), not only the first."
        testId="label-all-tokens"
      />
      {t && (
        <>
          <ul className="stats" data-testid="tokcls-stats">
            {stat(t.train, 'train')}
            {stat(t.validation, 'validation')}
          </ul>
          {t.sample && (
            <div className="small" data-testid="tokcls-sample">
              <span className="muted">Line {t.sample.line}: </span>
              <TaggedWords words={t.sample.words} tags={t.sample.tags} />
            </div>
          )}
        </>
      )}
    </div>
  );
}
