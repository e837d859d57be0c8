/**
 * The playground for SEQ_2_SEQ_LM runs: a source in, the greedy target out (encoder once, then KV-cached decoding),
 * with the adapter on and off side by side, streamed token by token.
 */
import { useState } from 'react';
import { generate, stopGeneration } from '../state/actions';
import { useProject } from '../state/project';
import { useRun } from '../state/run';
import { ErrorNote, NumberField } from './controls';

export function Seq2SeqPlayground(props: { ready: boolean; onRun: () => void; shown: boolean }) {
  const pg = useRun((s) => s.playground);
  const sample = useProject((s) => s.data.summary?.seq2seq?.sample ?? null);
  const [text, setText] = useState<string | null>(null);
  const [maxNew, setMaxNew] = useState(32);
  const source = text ?? sample?.source ?? 'Translate this sentence.';
  const gen = props.shown ? pg.generation : undefined;
  const reference = sample && gen && gen.prompt === sample.source ? sample.target : null;
  return (
    <>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          props.onRun();
          void generate(source, maxNew);
        }}
      >
        <textarea aria-label="Source" data-testid="playground-input" rows={2} value={source} onChange={(e) => setText(e.target.value)} />
        <div className="row">
          <NumberField label="max new tokens" value={maxNew} integer min={1} max={500} onChange={setMaxNew} hint="Greedy decoding (num_beams 1)" testId="max-new-tokens" />
          <button type="submit" className="primary" data-testid="playground-run" disabled={!props.ready || pg.busy}>
            {pg.busy ? 'Running…' : 'Generate'}
          </button>
          {pg.busy && gen?.streaming && (
            <button type="button" data-testid="playground-stop" onClick={() => stopGeneration()}>
              Stop
            </button>
          )}
        </div>
      </form>
      {pg.error && <ErrorNote testId="playground-error">{pg.error}</ErrorNote>}
      {gen?.stopped && <p className="muted small" data-testid="gen-stopped">Stopped: the targets are what was generated until then.</p>}
      {gen?.msPerToken !== undefined && (
        <p className="muted small" data-testid="ms-per-token">
          {gen.msPerToken.toFixed(0)} ms per token (encoder once, KV-cached decoder)
        </p>
      )}
      {gen && (
        <p className="small" data-testid="seq2seq-source">
          <span className="muted">Source: </span>
          <span className="mono">{gen.prompt}</span>
          {reference !== null && (
            <>
              {' '}
              <span className="muted">· reference target (line {sample!.line}): </span>
              <span className="mono" data-testid="seq2seq-reference">{reference}</span>
            </>
          )}
        </p>
      )}
      <div className="side-by-side">
        <div>
          <h3>Adapter on</h3>
          {gen && (
            <p className="gen mono" data-testid={gen.streaming ? 'gen-on-live' : 'gen-on'}>
              {gen.withAdapter}
              {!gen.streaming && !gen.withAdapter && <span className="muted">(empty: only special tokens such as &lt;/s&gt; or &lt;extra_id_0&gt; were generated)</span>}
            </p>
          )}
        </div>
        <div>
          <h3>Adapter off (base model)</h3>
          {gen && (
            <p className="gen mono" data-testid={gen.streaming ? 'gen-off-live' : 'gen-off'}>
              {gen.withoutAdapter}
              {!gen.streaming && !gen.withoutAdapter && <span className="muted">(empty: only special tokens such as &lt;/s&gt; or &lt;extra_id_0&gt; were generated)</span>}
            </p>
          )}
        </div>
      </div>
    </>
  );
}
