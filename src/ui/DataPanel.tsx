/** Data: built-in datasets or an uploaded CSV / JSONL / TXT, column mapping, preview, split and token lengths. */
import type { ColumnMapping } from '../engine/train/data-parse';
import { projectActions as P, useProject } from '../state/project';
import { useRun } from '../state/run';
import { ErrorNote, NumberField, Panel, SelectField } from './controls';
import { thousands } from './format';

const UPLOAD = '__upload__';

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
  const data = useProject((s) => s.data);
  const split = useProject((s) => s.validationSplit);
  const maxLength = useProject((s) => s.args.maxLength);
  const running = useRun((s) => s.state !== 'idle');
  const sum = data.summary;
  const sel = source?.kind === 'builtin' ? source.id : source?.kind === 'file' ? UPLOAD : '';
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
            onChange={(e) => e.target.value !== UPLOAD && P.setDataSource({ kind: 'builtin', id: e.target.value })}
          >
            {!sel && <option value="">Choose a dataset…</option>}
            {builtins.map((d) => (
              <option key={d.id} value={d.id}>
                {d.name} ({d.task})
              </option>
            ))}
            {source?.kind === 'file' && <option value={UPLOAD}>Uploaded: {source.file.name}</option>}
          </select>
          <label className="button">
            Upload CSV / JSONL / TXT…
            <input
              type="file"
              hidden
              data-testid="data-file-input"
              accept=".csv,.tsv,.jsonl,.ndjson,.txt,.md"
              onChange={(e) => {
                const f = e.target.files?.[0];
                if (f) P.setDataSource({ kind: 'file', file: f });
                e.target.value = '';
              }}
            />
          </label>
        </div>
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
            {source?.kind === 'file' && <MappingEditor columns={sum.columns} mapping={sum.mapping} task={task} onChange={P.setMapping} />}
            <div className="grid3">
              <NumberField
                label="validation split"
                value={split}
                min={0}
                max={0.5}
                disabled={source?.kind === 'builtin'}
                hint={source?.kind === 'builtin' ? 'Built-in datasets come with their own validation file' : 'Share of rows held out for evaluation'}
                onChange={P.setValidationSplit}
              />
              <NumberField label="max length (tokens)" value={maxLength} integer min={8} max={4096} onChange={(v) => P.updateArgs({ maxLength: v })} testId="max-length" />
            </div>
            {stats ? (
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
            <details className="preview">
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
            </details>
          </>
        )}
      </fieldset>
    </Panel>
  );
}
