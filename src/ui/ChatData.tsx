/**
 * Instruction / chat data in the Data panel: the format (detected or chosen), the chat template, what the loss
 * is computed on, and one example as the model sees it, with the trained-on text highlighted.
 */
import type { ChatSummary } from '../worker/chat-data';
import { projectActions as P, useProject } from '../state/project';
import { Check, SelectField } from './controls';
import { thousands } from './format';

const FORMATS = [
  { value: 'alpaca', label: 'Alpaca (instruction / input / output)' },
  { value: 'sharegpt', label: 'ShareGPT (conversations: from / value)' },
  { value: 'messages', label: 'Messages (role / content)' },
  { value: 'prompt_completion', label: 'prompt / completion' },
  { value: 'text', label: 'plain columns (no chat format)' },
];
const TEMPLATES = [
  { value: 'auto', label: "the model's (else a built-in)" },
  { value: 'model', label: "the model's chat_template" },
  { value: 'chatml', label: 'ChatML (built-in)' },
  { value: 'alpaca', label: 'Alpaca prompt (built-in)' },
];
const TRAIN_ON = [
  { value: 'responses', label: 'the responses (every assistant turn)' },
  { value: 'last_response', label: 'the last response only' },
  { value: 'all', label: 'everything, prompts included' },
];

function ChatPreview({ chat }: { chat: ChatSummary }) {
  if (!chat.preview) return null;
  return (
    <details className="preview" open>
      <summary>
        The first example as the model sees it: <mark className="trained">highlighted</mark> text is trained on, the rest is
        masked (label -100)
      </summary>
      <pre className="chat-preview" data-testid="chat-preview">
        {chat.preview.map((p, i) => (
          <span key={i} className={p.trained ? 'trained' : 'masked'} data-trained={p.trained} title={`${p.tokens} token${p.tokens === 1 ? '' : 's'}${p.trained ? ', trained on' : ', masked'}`}>
            {p.text}
          </span>
        ))}
      </pre>
    </details>
  );
}

/** The format, template and loss settings with the statistics and preview; shown for causal LM data. */
export function ChatData({ chat }: { chat: ChatSummary | undefined }) {
  const s = useProject((x) => x.chat);
  const detected = chat?.detected;
  const stats = chat?.stats;
  const formats = [{ value: 'auto', label: `auto${detected ? ` (${detected})` : chat ? '' : ' (none found: plain columns)'}` }, ...FORMATS];
  return (
    <div className="chat-data" data-testid="chat-data">
      <div className="grid3">
        <SelectField label="format" value={s.format} options={formats} onChange={(format) => P.setChat({ format: format as typeof s.format })} testId="data-format" />
        {chat && (
          <SelectField label="chat template" value={s.template} options={TEMPLATES} onChange={(template) => P.setChat({ template })} testId="chat-template" />
        )}
        {chat && (
          <SelectField label="loss on" value={s.trainOn} options={TRAIN_ON} onChange={(trainOn) => P.setChat({ trainOn: trainOn as typeof s.trainOn })} testId="train-on" />
        )}
      </div>
      {chat && stats && (
        <p className="stats" data-testid="chat-stats">
          {chat.format} rows{chat.template ? <> rendered with the {chat.template.name === 'model' ? "model's chat template" : `${chat.template.name} template`}</> : null}:{' '}
          <strong>
            {thousands(stats.trainedTokens)} of {thousands(stats.tokens)} tokens trained on
          </strong>{' '}
          ({stats.tokens ? ((100 * stats.trainedTokens) / stats.tokens).toFixed(1) : 0}%).
          {(stats.promptCut > 0 || stats.responseCut > 0 || stats.dropped > 0) && (
            <span className="warn">
              {' '}
              Truncation: {stats.promptCut} row(s) lose the start of their prompt, {stats.responseCut} lose the end of their response,{' '}
              {stats.dropped} have no response left and are skipped.
            </span>
          )}
        </p>
      )}
      {chat && (
        <Check
          label="pack examples into max-length sequences"
          checked={s.packing === true}
          onChange={(packing) => P.setChat({ packing })}
          hint="TRL's packing: examples joined with EOS and cut into blocks of the max length; masks kept, attention crosses examples in a block"
          testId="chat-packing"
        />
      )}
      {chat?.packing && (
        <p className="stats" data-testid="chat-packing-stats">
          <strong>
            {thousands(chat.packing.examples)} examples → {thousands(chat.packing.blocks)} packed sequences
          </strong>{' '}
          of up to {chat.packing.maxLength} tokens; pad tokens at that length: {thousands(chat.packing.wastedBefore)} one example per sequence,{' '}
          {thousands(chat.packing.wastedAfter)} packed.
        </p>
      )}
      {chat?.template?.note && <p className="hint">Note: {chat.template.note}.</p>}
      {chat && <ChatPreview chat={chat} />}
    </div>
  );
}
