/** Playground: the same input through the model with the adapter on and off, side by side. */
import { useState } from 'react';
import { classify, generate, stopGeneration } from '../state/actions';
import { useImport } from '../state/import';
import { useRun } from '../state/run';
import type { ClassifyResult, SamplingSettings } from '../worker/protocol';
import { ErrorNote, NumberField, Panel } from './controls';
import { TokenTags } from './TokenTags';
import { Seq2SeqPlayground } from './Seq2SeqPlayground';
import { wordDiff, type DiffSpan } from './diff';
import { ChatPlayground } from './ChatPlayground';
import { useProject } from '../state/project';
import { STALE_PLAYGROUND } from '../state/feedback';
import { PreviousRunNote } from './StaleNote';

/** A generated text with the spans that differ from the other side's marked. */
function Diffed(props: { spans: DiffSpan[] }) {
  return (
    <>
      {props.spans.map((d, i) =>
        d.same ? (
          <span key={i}>{d.text}</span>
        ) : (
          <mark key={i} className="diff" data-testid="diff-span">
            {d.text}
          </mark>
        ),
      )}
    </>
  );
}

function Probs(props: { r: ClassifyResult; testId: string }) {
  return (
    <div data-testid={props.testId}>
      <div className="big">{props.r.label}</div>
      {props.r.probs.map((p) => (
        <div key={p.label} className="prob">
          <span className="prob-label">{p.label}</span>
          <span className="prob-bar">
            <span style={{ width: `${(p.p * 100).toFixed(1)}%` }} />
          </span>
          <span className="mono">{(p.p * 100).toFixed(1)}%</span>
        </div>
      ))}
    </div>
  );
}

export function Playground() {
  const runTask = useRun((s) => s.task);
  const runId = useRun((s) => s.runId);
  const step = useRun((s) => s.progress?.step ?? s.checkpoint?.step);
  // An imported adapter is the one on show until a training run starts.
  const imported = useImport((s) => (s.active ? s.info : null));
  const trainedFrom = useImport((s) => s.trainedFrom);
  const task = imported ? imported.task : runTask;
  const pg = useRun((s) => s.playground);
  const [prompt, setPrompt] = useState('My fellow citizens,');
  const [text, setText] = useState('Subject: You have WON a FREE cruise! Click now to claim your prize');
  const [maxNew, setMaxNew] = useState(30);
  // transformers' generate() defaults where sampling is on; temperature 0 decodes greedily.
  const [sampling, setSampling] = useState<SamplingSettings>({ temperature: 0, topK: 50, topP: 1, repetitionPenalty: 1, seed: 0 });
  const sample = (p: Partial<SamplingSettings>) => setSampling((s) => ({ ...s, ...p }));
  const cls = task === 'SEQ_CLS';
  const ready = runId !== null || !!imported;
  // Results are shown only beside the adapter that produced them (an import or a new run replaces it).
  const source = imported ? `import:${imported.name}:${imported.summary}` : `run:${runId}`;
  const [resultsFor, setResultsFor] = useState<string | null>(null);
  // Chat data means a chat template to chat in; otherwise the worker uses the model's, or says it has none.
  const chatData = useProject((s) => !!s.data.summary?.chat?.template);
  const [chatChoice, setChatChoice] = useState<boolean | null>(null);
  const chatMode = task === 'CAUSAL_LM' && (chatChoice ?? chatData);
  // Chat replies are shown by the chat view.
  const gen = resultsFor === source && !chatMode ? pg.generation : undefined;
  const clsResult = resultsFor === source ? pg.classification : undefined;
  // Differences are marked once both sides are done (a half-streamed side would differ everywhere).
  const diff = gen && !gen.streaming ? wordDiff(gen.withAdapter, gen.withoutAdapter) : null;
  const adapterLabel = imported
    ? `imported: ${imported.name}, ${imported.summary}`
    : runId !== null
      ? `this run's (run ${runId}${step !== undefined ? `, step ${step}` : ''})${step === 0 ? ', untrained: it does not change the model yet' : ''}${trainedFrom?.runId === runId ? `, trained on from imported ${trainedFrom.name}` : ''}`
      : null;
  // A run started with another task, method or model than the studio's now: its adapter (and outputs) say so.
  const runFrom = useRun((s) => s.from);
  const stale = !imported && runId !== null ? <PreviousRunNote from={runFrom} what={STALE_PLAYGROUND} testId="playground-stale" /> : null;

  if (task === 'SEQ_2_SEQ_LM') {
    return (
      <Panel title="Playground" id="playground">
        {!ready && <p className="muted">After training starts (or an adapter is imported), type a source here: the target the adapter generates shows next to the base model's.</p>}
        {adapterLabel && <p className="small" data-testid="playground-adapter">Adapter: <strong>{adapterLabel}</strong></p>}
        {stale}
        <Seq2SeqPlayground ready={ready} shown={resultsFor === source} onRun={() => setResultsFor(source)} />
      </Panel>
    );
  }
  if (task === 'TOKEN_CLS') return <Panel title="Playground" id="playground">{adapterLabel && <p className="small" data-testid="playground-adapter">Adapter: <strong>{adapterLabel}</strong></p>}{stale}<TokenTags ready={runId !== null} /></Panel>;
  return (
    <Panel title="Playground" id="playground">
      {!ready && <p className="muted">After training starts (or an adapter is imported), compare the base model and the adapter here (both with the same sampling and seed, so differences come from the adapter).</p>}
      {adapterLabel && (
        <p className="small" data-testid="playground-adapter">
          Adapter: <strong>{adapterLabel}</strong>
        </p>
      )}
      {stale}
      {task === 'CAUSAL_LM' && (
        <label className="check">
          <input type="checkbox" data-testid="chat-mode" checked={chatMode} onChange={(e) => setChatChoice(e.target.checked)} /> chat (the prompt rendered with
          the chat template {chatData ? 'the run trained with' : "of the model"})
        </label>
      )}
      {chatMode && <ChatPlayground ready={ready} maxNew={maxNew} sampling={sampling} shown={resultsFor === source} onRun={() => setResultsFor(source)} />}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setResultsFor(source);
          void (cls ? classify(text) : generate(prompt, maxNew, sampling));
        }}
      >
        <textarea
          hidden={chatMode}
          aria-label={cls ? 'Text to classify' : 'Prompt'}
          data-testid="playground-input"
          rows={3}
          value={cls ? text : prompt}
          onChange={(e) => (cls ? setText(e.target.value) : setPrompt(e.target.value))}
        />
        <div className="row">
          {!cls && <NumberField label="new tokens" value={maxNew} integer min={1} max={500} onChange={setMaxNew} />}
          {!cls && (
            <>
              <NumberField label="temperature" value={sampling.temperature} min={0} max={5} onChange={(temperature) => sample({ temperature })} hint="0: greedy" testId="temperature" />
              <NumberField label="top-k" value={sampling.topK} integer min={0} onChange={(topK) => sample({ topK })} hint="0: off" />
              <NumberField label="top-p" value={sampling.topP} min={0.01} max={1} onChange={(topP) => sample({ topP })} />
              <NumberField label="repetition penalty" value={sampling.repetitionPenalty} min={1} max={3} onChange={(repetitionPenalty) => sample({ repetitionPenalty })} hint="1: off" />
              <NumberField label="seed" value={sampling.seed} integer min={0} onChange={(seed) => sample({ seed })} />
            </>
          )}
          <button type="submit" className="primary" data-testid="playground-run" disabled={!ready || pg.busy} hidden={chatMode}>
            {pg.busy ? 'Running…' : cls ? 'Classify' : 'Generate'}
          </button>
          {!cls && pg.busy && gen?.streaming && (
            <button type="button" data-testid="playground-stop" onClick={() => stopGeneration()}>
              Stop
            </button>
          )}
        </div>
      </form>
      {pg.error && <ErrorNote testId="playground-error">{pg.error}</ErrorNote>}
      {!cls && gen?.stopped && (
        <p className="muted small" data-testid="gen-stopped">
          Stopped: the text is what was generated until then.
        </p>
      )}
      {!cls && diff && gen && gen.withAdapter !== gen.withoutAdapter && (
        <p className="muted small">
          <mark className="diff">Marked</mark> words differ between the two sides (a word-level diff).
        </p>
      )}
      {!cls && gen?.msPerToken !== undefined && (
        <p className="muted small" data-testid="ms-per-token">
          {gen.msPerToken.toFixed(0)} ms per token (KV-cached decoding)
        </p>
      )}
      <div className="side-by-side">
        <div>
          <h3>Adapter on</h3>
          {!cls && gen && (
            <p className="gen" data-testid={gen.streaming ? 'gen-on-live' : 'gen-on'}>
              <span className="muted">{gen.prompt}</span>
              {diff ? <Diffed spans={diff.a} /> : gen.withAdapter}
            </p>
          )}
          {cls && clsResult && <Probs r={clsResult.withAdapter} testId="cls-on" />}
        </div>
        <div>
          <h3>Adapter off (base model)</h3>
          {!cls && gen && (
            <p className="gen" data-testid={gen.streaming ? 'gen-off-live' : 'gen-off'}>
              <span className="muted">{gen.prompt}</span>
              {diff ? <Diffed spans={diff.b} /> : gen.withoutAdapter}
            </p>
          )}
          {cls && clsResult && (
            <>
              <p className="hint" data-testid="cls-off-note">
                Untrained head when the checkpoint has none (as the built-in model): the base model's classification head is then freshly initialised, so these probabilities are meaningless.
              </p>
              <Probs r={clsResult.withoutAdapter} testId="cls-off" />
            </>
          )}
        </div>
      </div>
    </Panel>
  );
}
