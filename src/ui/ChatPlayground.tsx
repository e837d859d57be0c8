/**
 * The playground's chat mode: an optional system prompt and a conversation, rendered with the chat template the run
 * trained with (else the model's) and the assistant's turn opened; the reply streams in with the adapter on and off
 * side by side and ends at the template's end of turn. Each side keeps its own conversation: the person's messages
 * go to both, and each side's replies stay in its own history, so the base model never answers after the adapter's
 * words (nor the adapter after the base model's).
 */
import { useState } from 'react';
import { generate, stopGeneration } from '../state/actions';
import { useRun } from '../state/run';
import type { SamplingSettings } from '../worker/protocol';
import { conversations, type Turn } from '../state/chat-history';

export function ChatPlayground(props: { ready: boolean; maxNew: number; sampling: SamplingSettings; shown: boolean; onRun: () => void }) {
  const pg = useRun((s) => s.playground);
  const [system, setSystem] = useState('');
  const [turns, setTurns] = useState<Turn[]>([]);
  const [input, setInput] = useState('Who gave the State of the Union address that contains this passage?');
  const gen = props.shown ? pg.generation : undefined;
  // The last replies join the conversation (each side its own) when the next message is sent.
  const send = () => {
    const last = turns[turns.length - 1];
    const base: Turn[] = last?.role === 'user' && gen?.chat && !gen.streaming ? [...turns, { role: 'assistant', on: gen.withAdapter, off: gen.withoutAdapter }] : turns;
    const next: Turn[] = [...base, { role: 'user', content: input }];
    setTurns(next);
    setInput('');
    props.onRun();
    const c = conversations(system, next);
    void generate('', props.maxNew, props.sampling, c.on, c.off);
  };
  return (
    <div className="chat-playground" data-testid="chat-playground">
      <label>
        system prompt (optional)
        <input type="text" value={system} onChange={(e) => setSystem(e.target.value)} data-testid="chat-system" />
      </label>
      <p className="muted small" data-testid="chat-history-note">
        Each side keeps its own conversation: your messages go to both, the adapter-on side continues from its own replies and the base model from
        its own.
      </p>
      {turns.length > 0 && (
        <ol className="chat-turns" data-testid="chat-turns">
          {turns.map((t, i) =>
            t.role === 'user' ? (
              <li key={i} className="user">
                <strong>user:</strong> {t.content}
              </li>
            ) : (
              <li key={i} className="assistant" data-testid="chat-turn-reply">
                <div>
                  <strong>assistant, adapter on:</strong> {t.on}
                </div>
                <div>
                  <strong>assistant, base model:</strong> {t.off}
                </div>
              </li>
            ),
          )}
        </ol>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (input.trim()) send();
        }}
      >
        <textarea aria-label="Message" data-testid="chat-input" rows={2} value={input} onChange={(e) => setInput(e.target.value)} />
        <div className="row">
          <button type="submit" className="primary" data-testid="chat-send" disabled={!props.ready || pg.busy || !input.trim()}>
            {pg.busy ? 'Replying…' : 'Send'}
          </button>
          {pg.busy && gen?.streaming && (
            <button type="button" data-testid="playground-stop" onClick={() => stopGeneration()}>
              Stop
            </button>
          )}
          <button type="button" onClick={() => setTurns([])} disabled={pg.busy || !turns.length}>
            New conversation
          </button>
        </div>
      </form>
      {gen?.stopped && <p className="muted small" data-testid="gen-stopped">Stopped: the reply is what was generated until then.</p>}
      {gen && (
        <div className="side-by-side">
          <div>
            <h3>Adapter on</h3>
            <p className="gen" data-testid="chat-on" data-streaming={gen.streaming ? 'true' : undefined}>{gen.withAdapter}</p>
          </div>
          <div>
            <h3>Adapter off (base model)</h3>
            <p className="gen" data-testid="chat-off" data-streaming={gen.streaming ? 'true' : undefined}>{gen.withoutAdapter}</p>
          </div>
        </div>
      )}
      {gen?.chat && (
        <details>
          <summary>The prompt as rendered ({gen.chat.template === 'model' ? "the model's chat template" : `the ${gen.chat.template} template`}, generation prompt added)</summary>
          <pre className="chat-preview" data-testid="chat-rendered">{gen.chat.prompt}</pre>
          {gen.chat.promptOff !== undefined && (
            <>
              <p className="muted small">The base model's side, with its own replies:</p>
              <pre className="chat-preview" data-testid="chat-rendered-off">{gen.chat.promptOff}</pre>
            </>
          )}
        </details>
      )}
    </div>
  );
}
