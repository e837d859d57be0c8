/**
 * Method: the task, the PEFT method and its settings. The form is the method's schema (engine/peft/<method>/
 * config.ts, sent by the worker): PEFT's field names, defaults, ranges and one-line help; basic fields first,
 * the rest under "Advanced".
 */
import { useState } from 'react';
import { methodInfoOf, projectActions as P, runSteps, useProject, type MethodValues } from '../state/project';
import { useRun } from '../state/run';
import type { Field, TaskType } from '../worker/protocol';
import { Check, NumberField, Panel, Segmented, SelectField, TextField } from './controls';

const NO_LABELS: string[] = [];
const NO_VALUES: MethodValues = {};

/** One schema field as a form control, writing the method's values. */
function FieldControl({ f, value, onChange, runSteps }: { f: Field; value: unknown; onChange: (v: unknown) => void; runSteps?: number | null }) {
  const testId = `field-${f.name}`;
  switch (f.kind) {
    case 'int':
    case 'float':
      return (
        <NumberField
          label={f.name}
          value={typeof value === 'number' ? value : f.runSteps && runSteps ? runSteps : Number(f.default ?? 0)}
          integer={f.kind === 'int'}
          min={f.min !== undefined ? f.min + (f.exclusiveMin ? (f.kind === 'int' ? 1 : 1e-9) : 0) : undefined}
          max={f.max !== undefined ? f.max - (f.exclusiveMax ? (f.kind === 'int' ? 1 : 1e-9) : 0) : undefined}
          onChange={onChange}
          hint={f.help}
          testId={testId}
        />
      );
    case 'bool':
      return (
        <div className="field">
          <span className="label-spacer" />
          <Check label={f.name} checked={!!value} hint={f.help} onChange={onChange} testId={testId} />
        </div>
      );
    case 'choice': {
      // Choices may be booleans or strings (init_lora_weights: true | false | "gaussian"): the select holds JSON.
      const options = (f.choices ?? []).map((c) => ({ value: JSON.stringify(c), label: String(c) }));
      return (
        <SelectField label={f.name} value={JSON.stringify(value)} options={options} onChange={(v) => onChange(JSON.parse(v))} hint={f.help} testId={testId} />
      );
    }
    case 'targets':
    case 'names':
      // A list of names (the Targets panel edits target_modules itself; here: IA3's feedforward_modules).
      return (
        <TextField
          label={f.name}
          value={Array.isArray(value) ? value.join(', ') : ''}
          placeholder="none"
          onChange={(v) => onChange(v.trim() ? v.split(',').map((x) => x.trim()).filter(Boolean) : null)}
          hint={f.help}
          testId={testId}
        />
      );
    case 'object':
      return <JsonField f={f} value={value} onChange={onChange} />;
    default:
      return <TextField label={f.name} value={typeof value === 'string' ? value : ''} onChange={(v) => onChange(v === '' && f.nullable ? null : v)} hint={f.help} testId={testId} wide />;
  }
}

/** A JSON object field (rank_pattern): kept as text while it does not parse, so typing is not interrupted. */
function JsonField({ f, value, onChange }: { f: Field; value: unknown; onChange: (v: unknown) => void }) {
  const [text, setText] = useState(() => JSON.stringify(value ?? {}));
  const [bad, setBad] = useState(false);
  return (
    <TextField
      label={f.name}
      value={text}
      wide
      hint={bad ? 'not valid JSON yet: the previous value is used' : f.help}
      testId={`field-${f.name}`}
      onChange={(v) => {
        setText(v);
        try {
          const parsed = v.trim() ? JSON.parse(v) : {};
          setBad(false);
          onChange(parsed);
        } catch {
          setBad(true);
        }
      }}
    />
  );
}

/** What each task does, for the picker; a task without a hint shows by name. */
const TASK_HINTS: Record<string, string> = { CAUSAL_LM: 'generate text', SEQ_CLS: 'classify', TOKEN_CLS: 'tag tokens', SEQ_2_SEQ_LM: 'source → target' };
const DEFAULT_TASKS: { task: TaskType; className: string }[] = [{ task: 'CAUSAL_LM', className: '' }, { task: 'SEQ_CLS', className: '' }];

export function MethodPanel() {
  const task = useProject((s) => s.task);
  const tasks = useProject((s) => s.model.info?.tasks);
  const methods = useProject((s) => s.methods);
  const method = useProject((s) => s.method);
  const info = useProject((s) => methodInfoOf(s));
  const values = useProject((s) => s.settings[s.method] ?? NO_VALUES);
  const line = useProject((s) => s.targets.result?.line);
  const labels = useProject((s) => s.data.summary?.labels ?? NO_LABELS);
  const running = useRun((s) => s.state !== 'idle');
  const shown = (ui: Field['ui']) => (info?.schema ?? []).filter((f) => f.kind !== 'fixed' && (f.ui ?? 'advanced') === ui);
  const steps = useProject(runSteps);
  const control = (f: Field) => <FieldControl key={f.key} f={f} value={values[f.key]} runSteps={steps} onChange={(v) => P.updateSettings({ [f.key]: v })} />;
  const usable = methods.filter((m) => m.tasks.includes(task));

  return (
    <Panel title="Method" id="method">
      <fieldset disabled={running}>
        <div className="row">
          <span className="label">task_type</span>
          <Segmented
            label="Task"
            value={task}
            options={(tasks ?? DEFAULT_TASKS).map((t) => ({ value: t.task, label: `${t.task}${TASK_HINTS[t.task] ? ` (${TASK_HINTS[t.task]})` : ''}` }))}
            onChange={P.setTask}
          />
        </div>
        {tasks?.find((t) => t.task === task) && (
          <p className="hint" data-testid="task-class">Builds {tasks.find((t) => t.task === task)!.className}.</p>
        )}
        {task === 'TOKEN_CLS' && (
          <p className="hint" data-testid="labels-line">
            {labels.length ? `Tags: ${labels.map((l, i) => `${i} = ${l}`).join(', ')}. A new token-classification head is trained and saved (modules_to_save).` : 'Tags come from the data.'}
          </p>
        )}
        {task === 'SEQ_CLS' && (
          <p className="hint" data-testid="labels-line">
            {labels.length ? `Labels from the data: ${labels.map((l, i) => `${i} = ${l}`).join(', ')}. A new classification head is trained and saved.` : 'Labels come from the data’s label column.'}
          </p>
        )}
        <div className="grid3">
          <SelectField
            label="peft_type"
            value={method}
            options={(usable.length ? usable : [{ peftType: method, label: method }]).map((m) => ({ value: m.peftType, label: m.label }))}
            onChange={(v) => P.setMethod(v as typeof method)}
            testId="method"
          />
        </div>
        {methods.length > usable.length && (
          <p className="hint" data-testid="methods-not-for-task">
            Not for {task}: {methods.filter((m) => !m.tasks.includes(task)).map((m) => m.label).join(', ')} (the engine refuses task_type {task} for{' '}
            {methods.length - usable.length > 1 ? 'them' : 'it'}; it trains {usable.map((m) => m.label).join(', ')}).
          </p>
        )}
        {info && (
          <p className="hint" data-testid="method-description">
            {info.description} <span className="muted">PEFT's examples train it at lr {info.learningRate}.</span>
          </p>
        )}
        {line && (
          <p className="mono small" data-testid="method-trainable-line">
            {line}
          </p>
        )}
        <div className="grid3">{shown('basic').map(control)}</div>
        {shown('advanced').length > 0 && (
          <details className="advanced">
            <summary>Advanced</summary>
            <div className="grid3">{shown('advanced').map(control)}</div>
          </details>
        )}
      </fieldset>
    </Panel>
  );
}
