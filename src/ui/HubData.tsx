/**
 * "From the Hub" in the Data panel: a dataset id (owner/name[:config][@revision]), the training split, an optional
 * split to evaluate on, and how many rows to read; once loaded, the dataset's configs and splits with row counts.
 */
import { useState } from 'react';
import { projectActions as P, useProject } from '../state/project';
import type { HubDataInfo } from '../worker/hub-data';
import { thousands } from './format';

export function HubDataField() {
  const current = useProject((s) => s.hubData);
  const tokcls = useProject((s) => s.task === 'TOKEN_CLS');
  const [id, setId] = useState(current?.id ?? '');
  const [split, setSplit] = useState(current?.split ?? 'train');
  const [valid, setValid] = useState(current?.validationSplit ?? '');
  const [maxRows, setMaxRows] = useState(current?.maxRows ?? 1000);
  // TOKEN_CLS: the words and tags columns; empty: tokens / words and ner_tags / tags / labels.
  const [tokensColumn, setTokensColumn] = useState(current?.tokensColumn ?? '');
  const [tagsColumn, setTagsColumn] = useState(current?.tagsColumn ?? '');
  const load = () => {
    if (!id.trim()) return;
    const columns = tokcls ? { ...(tokensColumn.trim() ? { tokensColumn: tokensColumn.trim() } : {}), ...(tagsColumn.trim() ? { tagsColumn: tagsColumn.trim() } : {}) } : {};
    P.setHubData({ id: id.trim(), split: split.trim() || 'train', ...(valid.trim() ? { validationSplit: valid.trim() } : {}), maxRows: Math.max(1, Math.floor(maxRows) || 1000), ...columns });
  };
  return (
    <details className="hub-data" open={!!current}>
      <summary>From the Hub</summary>
      <form
        className="row wrap"
        onSubmit={(e) => {
          e.preventDefault();
          load();
        }}
      >
        <input aria-label="Hub dataset id" data-testid="hub-dataset-id" className="grow mono" placeholder="owner/name[:config][@revision]" value={id} onChange={(e) => setId(e.target.value)} />
        <label className="small">
          split <input aria-label="Training split" data-testid="hub-dataset-split" size={10} value={split} onChange={(e) => setSplit(e.target.value)} />
        </label>
        <label className="small">
          validation split <input aria-label="Validation split" data-testid="hub-dataset-validation" size={10} placeholder="(fraction)" value={valid} onChange={(e) => setValid(e.target.value)} />
        </label>
        <label className="small">
          first rows <input aria-label="Rows to read" data-testid="hub-dataset-rows" type="number" min={1} style={{ width: '7em' }} value={maxRows} onChange={(e) => setMaxRows(Number(e.target.value))} />
        </label>
        {tokcls && (
          <>
            <label className="small">
              words column <input aria-label="Words column" data-testid="hub-dataset-tokens-column" size={9} placeholder="tokens" value={tokensColumn} onChange={(e) => setTokensColumn(e.target.value)} />
            </label>
            <label className="small">
              tags column <input aria-label="Tags column" data-testid="hub-dataset-tags-column" size={9} placeholder="ner_tags" value={tagsColumn} onChange={(e) => setTagsColumn(e.target.value)} />
            </label>
          </>
        )}
        <button type="submit" data-testid="hub-dataset-load" disabled={!id.trim()}>
          Load
        </button>
      </form>
      <p className="hint">Uses the Hub URL and token of the model settings. Parquet is read with range requests, only as far as the first rows need.</p>
    </details>
  );
}

/** The loaded Hub dataset: where its splits came from, and every split's row count. */
export function HubDataInfoLine({ info }: { info: HubDataInfo }) {
  return (
    <p className="hint" data-testid="hub-splits">
      {info.id} ({info.source === 'parquet-conversion' ? "the Hub's Parquet conversion" : "the repo's files"}; configs {info.configs.join(', ')}):{' '}
      {info.splits.map((s) => `${s.name} ${s.rows === null ? `${s.files} file(s)` : `${thousands(s.rows)} rows`}`).join(', ')}. Reading the first {thousands(info.maxRows)} rows of each split used.
      {info.tokcls && (
        <span data-testid="hub-tokcls-columns">
          {' '}Words from {info.tokcls.tokensColumn}, tags from {info.tokcls.tagsColumn}
          {info.tokcls.namesFrom ? `, tag names from the dataset's features (${info.tokcls.namesFrom === 'readme' ? "the README's dataset_info" : 'the Parquet metadata'})` : "; the dataset's features name no tags, so they come from the label list or the tags as written"}.
        </span>
      )}
    </p>
  );
}
