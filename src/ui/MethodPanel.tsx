/** Method: task, LoRA hyper-parameters or prompt-tuning settings, named as in PEFT. */
import { projectActions as P, useProject } from '../state/project';
import { useRun } from '../state/run';
import { Check, NumberField, Panel, Segmented, SelectField, TextField } from './controls';

const NO_LABELS: string[] = [];

const INITS = [
  { value: 'true', label: 'True (B = 0: starts as the base model)' },
  { value: 'gaussian', label: '"gaussian" (A ~ N(0, 1/r), B = 0)' },
  { value: 'false', label: 'False (random B: changes the model at once)' },
] as const;

export function MethodPanel() {
  const task = useProject((s) => s.task);
  const method = useProject((s) => s.method);
  const lora = useProject((s) => s.lora);
  const prompt = useProject((s) => s.prompt);
  const labels = useProject((s) => s.data.summary?.labels ?? NO_LABELS);
  const running = useRun((s) => s.state !== 'idle');

  return (
    <Panel title="Method" id="method">
      <fieldset disabled={running}>
        <div className="row">
          <span className="label">task_type</span>
          <Segmented
            label="Task"
            value={task}
            options={[
              { value: 'CAUSAL_LM', label: 'CAUSAL_LM (generate text)' },
              { value: 'SEQ_CLS', label: 'SEQ_CLS (classify)' },
            ]}
            onChange={P.setTask}
          />
        </div>
        {task === 'SEQ_CLS' && (
          <p className="hint" data-testid="labels-line">
            {labels.length ? `Labels from the data: ${labels.map((l, i) => `${i} = ${l}`).join(', ')}. A new classification head ("score") is trained and saved.` : 'Labels come from the data’s label column.'}
          </p>
        )}
        <div className="row">
          <span className="label">peft_type</span>
          <Segmented
            label="Method"
            value={method}
            options={[
              { value: 'LORA', label: 'LoRA' },
              { value: 'PROMPT_TUNING', label: 'Prompt tuning' },
            ]}
            onChange={P.setMethod}
          />
        </div>
        {method === 'LORA' ? (
          <div className="grid3">
            <NumberField label="r" value={lora.r} integer min={1} max={1024} onChange={(r) => P.updateLora({ r })} hint="LoRA rank" testId="lora-r" />
            <NumberField label="lora_alpha" value={lora.loraAlpha} min={0.001} onChange={(loraAlpha) => P.updateLora({ loraAlpha })} hint="scaling = lora_alpha / r" />
            <NumberField label="lora_dropout" value={lora.loraDropout} min={0} max={0.99} onChange={(loraDropout) => P.updateLora({ loraDropout })} />
            <SelectField
              label="bias"
              value={lora.bias}
              options={[
                { value: 'none', label: 'none' },
                { value: 'lora_only', label: 'lora_only' },
                { value: 'all', label: 'all' },
              ]}
              onChange={(bias) => P.updateLora({ bias })}
            />
            <SelectField
              label="init_lora_weights"
              value={String(lora.initLoraWeights) as (typeof INITS)[number]['value']}
              options={INITS.map((o) => ({ ...o }))}
              onChange={(v) => P.updateLora({ initLoraWeights: v === 'gaussian' ? 'gaussian' : v === 'true' })}
            />
            <div className="field">
              <span className="label-spacer" />
              <Check
                label="use_rslora"
                checked={lora.useRslora}
                hint="rank-stabilised scaling lora_alpha / sqrt(r)"
                onChange={(useRslora) => P.updateLora({ useRslora })}
              />
            </div>
          </div>
        ) : (
          <div className="grid3">
            <NumberField
              label="num_virtual_tokens"
              value={prompt.numVirtualTokens}
              integer
              min={1}
              max={512}
              onChange={(numVirtualTokens) => P.updatePrompt({ numVirtualTokens })}
            />
            <SelectField
              label="prompt_tuning_init"
              value={prompt.promptTuningInit}
              options={[
                { value: 'RANDOM', label: 'RANDOM' },
                { value: 'SAMPLE_VOCAB', label: 'SAMPLE_VOCAB' },
                { value: 'TEXT', label: 'TEXT' },
              ]}
              onChange={(promptTuningInit) => P.updatePrompt({ promptTuningInit })}
            />
            {prompt.promptTuningInit === 'TEXT' && (
              <TextField
                label="prompt_tuning_init_text"
                value={prompt.promptTuningInitText}
                wide
                placeholder="Classify if the e-mail is spam or not:"
                onChange={(promptTuningInitText) => P.updatePrompt({ promptTuningInitText })}
              />
            )}
          </div>
        )}
      </fieldset>
    </Panel>
  );
}
