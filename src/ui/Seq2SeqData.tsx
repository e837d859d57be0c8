/**
 * The Data panel's SEQ_2_SEQ_LM part: which columns are the source and the target (an upload's or a Hub dataset's
 * columns can be picked), the token lengths of each side with </s> and how many rows max length cuts, and one row.
 */
import { projectActions as P, useProject } from '../state/project';
import type { DataSummary, TokenStats } from '../worker/protocol';
import { NumberField, SelectField } from './controls';
import { thousands } from './format';

function Lengths(props: { what: string; s: TokenStats; testId: string }) {
  const s = props.s;
  return (
    <li data-testid={props.testId} data-truncated={s.truncated} data-max={s.max}>
      {props.what} tokens: min {s.min}, median {s.p50}, p95 {s.p95}, max {s.max} (mean {s.mean.toFixed(1)}).{' '}
      <span className={s.truncated ? 'warn' : ''}>
        {s.truncated
          ? `${thousands(s.truncated)} of ${thousands(s.count)} rows (${((100 * s.truncated) / s.count).toFixed(0)}%) are longer than ${s.maxLength} tokens and will be truncated (</s> kept last).`
          : `None longer than ${s.maxLength} tokens.`}
      </span>
    </li>
  );
}

export function Seq2SeqData(props: { summary: DataSummary; pickColumns: boolean }) {
  const sum = props.summary;
  const t = sum.seq2seq;
  const genRows = useProject((s) => s.args.generationEvalRows ?? null);
  const mapping = useProject((s) => s.mapping);
  const maxLength = useProject((s) => s.args.maxLength);
  const maxTarget = useProject((s) => s.args.maxTargetLength ?? null);
  if (!t) return null;
  const cols = sum.columns.map((c) => ({ value: c, label: c }));
  // The columns just picked (the summary catches up when the data has reloaded); picking the other side's swaps them.
  const picked = mapping?.kind === 'prompt-response' && sum.columns.includes(mapping.prompt) && sum.columns.includes(mapping.response);
  const cur = picked ? { source: mapping.prompt, target: mapping.response } : { source: t.sourceColumn ?? '', target: t.targetColumn ?? '' };
  const set = (source: string, target: string) => P.setMapping({ kind: 'prompt-response', prompt: source, response: target });
  return (
    <div className="seq2seq-data" data-testid="seq2seq-data">
      {t.sourceColumn === null ? (
        <p className="hint">Pre-tokenized rows: input_ids are the encoder's input, labels the decoder's targets (-100 not scored).</p>
      ) : props.pickColumns ? (
        <div className="grid3">
          <SelectField label="source column" value={cur.source} options={cols} onChange={(v) => set(v, v === cur.target ? cur.source : cur.target)} testId="source-column" hint="The encoder's input" />
          <SelectField label="target column" value={cur.target} options={cols} onChange={(v) => set(v === cur.source ? cur.target : cur.source, v)} testId="target-column" hint="What the decoder learns to generate" />
        </div>
      ) : (
        <p className="hint" data-testid="seq2seq-columns">
          Source column <strong>{t.sourceColumn}</strong> → target column <strong>{t.targetColumn}</strong>.
        </p>
      )}
      {t.source && t.target ? (
        <ul className="stats" data-testid="seq2seq-stats">
          <Lengths what="Source" s={t.source} testId="source-stats" />
          <Lengths what="Target" s={t.target} testId="target-stats" />
        </ul>
      ) : (
        <p className="hint">Token lengths appear once a model with a tokenizer is loaded.</p>
      )}
      <div className="grid3">
        <NumberField
          label="max target length (tokens)"
          value={maxTarget ?? maxLength}
          integer
          min={2}
          max={4096}
          onChange={(v) => P.updateArgs({ maxTargetLength: v })}
          hint="Most target tokens, </s> included (--max-target-length); the source is cut at max length"
          testId="max-target-length"
        />
        <NumberField
          label="generation eval rows"
          value={genRows ?? sum.validationRows}
          integer
          min={1}
          onChange={(v) => P.updateArgs({ generationEvalRows: v })}
          hint={`Exact match, chrF and ROUGE-L from greedy generation on the first ${Math.min(genRows ?? sum.validationRows, sum.validationRows)} of ${thousands(sum.validationRows)} validation rows; the eval loss uses all`}
          testId="generation-eval-rows"
        />
      </div>
      {t.sample && (
        <p className="small" data-testid="seq2seq-sample">
          <span className="muted">Line {t.sample.line}: </span>
          <span className="mono">{t.sample.source.slice(0, 200)}</span> → <span className="mono">{t.sample.target.slice(0, 200)}</span>
        </p>
      )}
    </div>
  );
}
