/**
 * Data: built-in datasets or an uploaded CSV / JSONL / TXT (kept in this browser, listed with the built-in ones),
 * column mapping, preview, split and token lengths.
 */
import type { ColumnMapping } from '../engine/train/data-parse';
import { deleteUpload, selectUpload, uploadDataset } from '../state/actions';
import { projectActions as P, useProject } from '../state/project';
import { useRun } from '../state/run';
import { ChatData } from './ChatData';
import { HubDataField, HubDataInfoLine } from './HubData';
import { ErrorNote, NumberField, Panel, SelectField } from './controls';
import { bytes, thousands } from './format';
import { TokenClsData } from './TokenTags';
import { Seq2SeqData } from './Seq2SeqData';

/** The select's value for an upload used this session only (not kept in the browser). */
const SESSION = '__upload__';
const STORED = 'upload:';
/** The select's value while a Hub dataset is in use. */
const HUB = '__hub__';

function MappingEditor(props: { columns: string[]; mapping: ColumnMapping; task: string; onChange: (m: ColumnMapping) => void }) {
  const { columns, mapping: m } = props;
  const col = (label: string, value: string, set: (v: string) => void) => (
    <SelectField label={label} value={value} options={columns.map((c) => ({ value: c, label: c }))} onChange={set} />
  );
  const kinds =
    props.task === 'SEQ_CLS'
      ? [{ value: 'text-label' as const, label: 'text + label' }]
      : [
          { value: 'text' as const, label: 'text' },
          { value: 'prompt-response' as const, label: 'prompt + response' },
        ];
  const first = columns[0];
  const second = columns[1] ?? first;
  return (
    <div className="grid3">
      <SelectField
        label="columns"
        value={m.kind}
        options={kinds}
        onChange={(kind) =>
          props.onChange(
            kind === 'text' ? { kind, text: first } : kind === 'text-label' ? { kind, text: first, label: second } : { kind, prompt: first, response: second },
          )
        }
      />
      {m.kind === 'text' && col('text', m.text, (text) => props.onChange({ ...m, text }))}
      {m.kind === 'text-label' && col('text', m.text, (text) => props.onChange({ ...m, text }))}
      {m.kind === 'text-label' && col('label', m.label, (label) => props.onChange({ ...m, label }))}
      {m.kind === 'prompt-response' && col('prompt', m.prompt, (prompt) => props.onChange({ ...m, prompt }))}
      {m.kind === 'prompt-response' && col('response', m.response, (response) => props.onChange({ ...m, response }))}
    </div>
  );
}

export function DataPanel() {
  const task = useProject((s) => s.task);
  const builtins = useProject((s) => s.builtinDatasets);
  const source = useProject((s) => s.dataSource);
  const ref = useProject((s) => s.dataRef);
  const uploads = useProject((s) => s.uploads);
  const data = useProject((s) => s.data);
  const split = useProject((s) => s.validationSplit);
  const maxLength = useProject((s) => s.args.maxLength);
  const running = useRun((s) => s.state !== 'idle');
  const sum = data.summary;
  const hubData = useProject((s) => s.hubData);
  const fromHub = !!hubData && !!sum?.hub;
  const sel = fromHub ? HUB : ref?.kind === 'builtin' ? ref.id : ref?.kind === 'upload' ? STORED + ref.id : source?.kind === 'file' ? SESSION : '';
  const storedSel = ref?.kind === 'upload' && uploads.list.some((u) => u.id === ref.id);
  const builtin = source?.kind === 'builtin' ? builtins.find((d) => d.id === source.id) : undefined;
  const stats = sum?.stats;

  return (
    <Panel title="Data" id="data" aside={data.status === 'loading' ? <span className="spinner" aria-label="loading" /> : null}>
      <fieldset disabled={running}>
        <div className="row">
          <select
            aria-label="Dataset"
            data-testid="dataset-select"
            className="grow"
            value={sel}
            onChange={(e) => {
              const v = e.target.value;
              if (v.startsWith(STORED)) void selectUpload(v.slice(STORED.length));
              else if (v && v !== SESSION && v !== HUB) P.setDataSource({ kind: 'builtin', id: v });
            }}
          >
            {!sel && <option value="">Choose a dataset…</option>}
            {builtins.map((d) => (
              <option key={d.id} value={d.id}>
                {d.name} ({d.task})
              </option>
            ))}
            {uploads.list.map((u) => (
              <option key={u.id} value={STORED + u.id}>
                Uploaded: {u.name}
              </option>
            ))}
            {ref?.kind === 'upload' && !storedSel && <option value={sel}>Uploaded: {ref.name}</option>}
            {sel === SESSION && source?.kind === 'file' && <option value={SESSION}>Uploaded: {source.file.name} (this session only)</option>}
            {fromHub && <option value={HUB}>From the Hub: {sum!.hub!.id}</option>}
          </select>
          <label className="button">
            Upload CSV / JSONL / TXT…
            <input
              type="file"
              hidden
              data-testid="data-file-input"
              accept=".csv,.tsv,.jsonl,.ndjson,.txt,.md,.conll,.iob,.iob2,.bio"
              onChange={(e) => {
                const f = e.target.files?.[0];
                if (f) uploadDataset(f);
                e.target.value = '';
              }}
            />
          </label>
        </div>
        <HubDataField />
        {uploads.error && (
          <p className="warn small" role="status" data-testid="upload-store-error">
            {uploads.error}
          </p>
        )}
        {uploads.list.length > 0 && (
          <details className="uploads" data-testid="uploads-list">
            <summary>
              Uploaded datasets kept in this browser{' '}
              <span className="muted small">
                · {uploads.list.length}, {bytes(uploads.list.reduce((a, u) => a + u.size, 0))}
              </span>
            </summary>
            <table className="cache-table">
              <tbody>
                {uploads.list.map((u) => (
                  <tr key={u.id} data-testid="upload-row" data-name={u.name}>
                    <td className="mono">{u.name}</td>
                    <td className="mono">{bytes(u.size)}</td>
                    <td className="muted small">{new Date(u.savedAt).toLocaleString()}</td>
                    <td className="actions">
                      <button type="button" className="link danger" data-testid="upload-delete" onClick={() => void deleteUpload(u.id)}>
                        Delete
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p className="hint">Uploading a file of the same name replaces the stored copy. Deleting one that is in use keeps it for this session.</p>
          </details>
        )}
        {builtin && <p className="hint">{builtin.description}</p>}
        {builtin && builtin.task !== task && (
          <p className="warn">This dataset is meant for {builtin.task}; the task is {task}.</p>
        )}
        {data.error && (
          <ErrorNote testId="data-error">
            {data.error}
            {sum && <div className="muted">Still using {sum.name}.</div>}
          </ErrorNote>
        )}
        {sum && (
          <>
            <p className="data-summary" data-testid="data-summary">
              <strong>{sum.name}</strong>: {thousands(sum.trainRows)} training rows, {thousands(sum.validationRows)} validation rows
              {sum.labels.length > 0 && <> · labels {sum.labels.join(', ')}</>}
            </p>
            {fromHub && <HubDataInfoLine info={sum.hub!} />}
            {task === 'CAUSAL_LM' && (sum.chat || source?.kind !== 'builtin' || fromHub) && <ChatData chat={sum.chat} />}
            {task === 'TOKEN_CLS' && <TokenClsData summary={sum} />}
            {task === 'SEQ_2_SEQ_LM' && <Seq2SeqData summary={sum} pickColumns={source?.kind === 'file' || fromHub} />}
            {(source?.kind === 'file' || fromHub) && !sum.chat && task !== 'TOKEN_CLS' && task !== 'SEQ_2_SEQ_LM' && <MappingEditor columns={sum.columns} mapping={sum.mapping} task={task} onChange={P.setMapping} />}
            <div className="grid3">
              <NumberField
                label="validation split"
                value={split}
                min={0}
                max={0.5}
                disabled={fromHub ? !!hubData?.validationSplit : source?.kind === 'builtin'}
                hint={fromHub && hubData?.validationSplit ? `Evaluating on the ${hubData.validationSplit} split` : source?.kind === 'builtin' && !fromHub ? 'Built-in datasets come with their own validation file' : 'Share of rows held out for evaluation'}
                onChange={P.setValidationSplit}
              />
              <NumberField label="max length (tokens)" value={maxLength} integer min={8} max={4096} onChange={(v) => P.updateArgs({ maxLength: v })} testId="max-length" />
            </div>
            {task === 'SEQ_2_SEQ_LM' ? null : stats ? (
              <p className="stats" data-testid="token-stats">
                Tokens per row: min {stats.min}, median {stats.p50}, p95 {stats.p95}, max {stats.max} (mean {stats.mean.toFixed(0)}).{' '}
                <span className={stats.truncated ? 'warn' : ''}>
                  {stats.truncated
                    ? `${thousands(stats.truncated)} of ${thousands(stats.count)} rows (${((100 * stats.truncated) / stats.count).toFixed(0)}%) are longer than ${stats.maxLength} tokens and will be truncated.`
                    : `No row is longer than ${stats.maxLength} tokens.`}
                </span>
              </p>
            ) : (
              <p className="hint">Token statistics appear once a model with a tokenizer is loaded.</p>
            )}
            {sum.warnings.length > 0 && (
              <ul className="warnings" data-testid="data-warnings">
                {sum.warnings.map((w) => (
                  <li key={w} className="warn">
                    {w}
                  </li>
                ))}
              </ul>
            )}
            {sum.issueCount > 0 && (
              <div className="issues" data-testid="data-issues">
                <strong>
                  {sum.issueCount} row{sum.issueCount > 1 ? 's' : ''} skipped:
                </strong>
                <ul>
                  {sum.issues.slice(0, 5).map((t) => (
                    <li key={t} className="mono">
                      {t}
                    </li>
                  ))}
                </ul>
                {sum.issueCount > 5 && <span className="muted">…and {sum.issueCount - 5} more.</span>}
              </div>
            )}
            {task !== 'TOKEN_CLS' && <details className="preview">
              <summary>Preview the first rows</summary>
              <div className="table-wrap">
                <table>
                  <thead>
                    <tr>
                      <th>line</th>
                      {sum.columns.map((c) => (
                        <th key={c}>{c}</th>
                      ))}
                    </tr>
                  </thead>
                  <tbody>
                    {sum.preview.map((r) => (
                      <tr key={r.line}>
                        <td className="muted">{r.line}</td>
                        {sum.columns.map((c) => (
                          <td key={c}>{(r.cells[c] ?? '').slice(0, 140)}</td>
                        ))}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </details>}
          </>
        )}
      </fieldset>
    </Panel>
  );
}
