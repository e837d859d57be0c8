/** Small form controls shared by the panels. */
import { cloneElement, isValidElement, useEffect, useId, useState, type ReactNode } from 'react';

export function Panel(props: { title: string; id?: string; aside?: ReactNode; children: ReactNode; className?: string }) {
  return (
    <section className={`panel ${props.className ?? ''}`} aria-labelledby={`${props.id ?? props.title}-h`} data-panel={props.id ?? props.title.toLowerCase()}>
      <header className="panel-head">
        <h2 id={`${props.id ?? props.title}-h`}>{props.title}</h2>
        {props.aside}
      </header>
      {props.children}
    </section>
  );
}

/**
 * A labelled control with its help text (and the reason a value is refused) shown under it and linked to the
 * control with aria-describedby, so screen readers read it and nothing hides in a tooltip.
 */
export function Field(props: { label: string; hint?: string; problem?: string | null; children: (id: string) => ReactNode; wide?: boolean }) {
  const id = useId();
  const hintId = props.hint ? `${id}-hint` : undefined;
  const problemId = props.problem ? `${id}-problem` : undefined;
  const describedBy = [problemId, hintId].filter(Boolean).join(' ') || undefined;
  const child = props.children(id);
  return (
    <div className={`field ${props.wide ? 'wide' : ''}`}>
      <label htmlFor={id}>{props.label}</label>
      {isValidElement<{ 'aria-describedby'?: string }>(child) && describedBy ? cloneElement(child, { 'aria-describedby': describedBy }) : child}
      {props.problem && (
        <span className="field-problem" id={problemId}>
          {props.problem}
        </span>
      )}
      {props.hint && (
        <span className="field-hint" id={hintId}>
          {props.hint}
        </span>
      )}
    </div>
  );
}

/**
 * A number input that keeps what is typed (so "0." or "1e-" can be on the way to a number) and commits
 * only valid values within [min, max]; invalid text is marked and explained under the field.
 */
export function NumberField(props: {
  label: string;
  value: number;
  onChange: (v: number) => void;
  min?: number;
  max?: number;
  step?: number;
  integer?: boolean;
  hint?: string;
  disabled?: boolean;
  testId?: string;
}) {
  const [text, setText] = useState(String(props.value));
  useEffect(() => {
    if (Number(text) !== props.value) setText(String(props.value));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.value]);
  const n = Number(text);
  const problem =
    text.trim() === '' || !Number.isFinite(n)
      ? 'not a number'
      : props.integer && !Number.isInteger(n)
        ? 'must be a whole number'
        : props.min !== undefined && n < props.min
          ? `must be at least ${props.min}`
          : props.max !== undefined && n > props.max
            ? `must be at most ${props.max}`
            : null;
  return (
    <Field label={props.label} hint={props.hint} problem={problem}>
      {(id) => (
        <input
          id={id}
          data-testid={props.testId}
          className={problem ? 'invalid' : ''}
          aria-invalid={!!problem}
          inputMode="decimal"
          value={text}
          disabled={props.disabled}
          onChange={(e) => {
            setText(e.target.value);
            const v = Number(e.target.value);
            const ok =
              e.target.value.trim() !== '' && Number.isFinite(v) && (!props.integer || Number.isInteger(v)) &&
              (props.min === undefined || v >= props.min) && (props.max === undefined || v <= props.max);
            if (ok) props.onChange(v);
          }}
        />
      )}
    </Field>
  );
}

/** A whole number that may be left empty (null: the setting is off), committed when valid. */
export function OptionalNumberField(props: {
  label: string;
  value: number | null;
  onChange: (v: number | null) => void;
  min?: number;
  hint?: string;
  placeholder?: string;
  testId?: string;
}) {
  const [text, setText] = useState(props.value === null ? '' : String(props.value));
  useEffect(() => {
    const now = text.trim() === '' ? null : Number(text);
    if (now !== props.value) setText(props.value === null ? '' : String(props.value));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.value]);
  const parse = (t: string): { ok: boolean; v: number | null } => {
    if (t.trim() === '') return { ok: true, v: null };
    const v = Number(t);
    return { ok: Number.isInteger(v) && (props.min === undefined || v >= props.min), v };
  };
  const { ok } = parse(text);
  const problem = ok ? null : `a whole number${props.min !== undefined ? ` of at least ${props.min}` : ''}, or empty`;
  return (
    <Field label={props.label} hint={props.hint} problem={problem}>
      {(id) => (
        <input
          id={id}
          data-testid={props.testId}
          className={problem ? 'invalid' : ''}
          aria-invalid={!!problem}
          inputMode="numeric"
          placeholder={props.placeholder}
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            const r = parse(e.target.value);
            if (r.ok) props.onChange(r.v);
          }}
        />
      )}
    </Field>
  );
}

export function SelectField<T extends string>(props: {
  label: string;
  value: T;
  options: { value: T; label: string }[];
  onChange: (v: T) => void;
  hint?: string;
  disabled?: boolean;
  testId?: string;
}) {
  return (
    <Field label={props.label} hint={props.hint}>
      {(id) => (
        <select id={id} data-testid={props.testId} value={props.value} disabled={props.disabled} onChange={(e) => props.onChange(e.target.value as T)}>
          {props.options.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
}

export function TextField(props: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  placeholder?: string;
  hint?: string;
  wide?: boolean;
  mono?: boolean;
  disabled?: boolean;
  testId?: string;
}) {
  return (
    <Field label={props.label} hint={props.hint} wide={props.wide}>
      {(id) => (
        <input
          id={id}
          data-testid={props.testId}
          className={props.mono ? 'mono' : ''}
          value={props.value}
          placeholder={props.placeholder}
          disabled={props.disabled}
          spellCheck={false}
          onChange={(e) => props.onChange(e.target.value)}
        />
      )}
    </Field>
  );
}

export function Check(props: { label: string; checked: boolean; onChange: (v: boolean) => void; hint?: string; disabled?: boolean; testId?: string }) {
  const hintId = useId();
  return (
    <span className="check-field">
      <label className="check">
        <input
          type="checkbox"
          checked={props.checked}
          disabled={props.disabled}
          data-testid={props.testId}
          aria-describedby={props.hint ? hintId : undefined}
          onChange={(e) => props.onChange(e.target.checked)}
        />
        {props.label}
      </label>
      {props.hint && (
        <span className="field-hint" id={hintId}>
          {props.hint}
        </span>
      )}
    </span>
  );
}

/** A row of mutually exclusive buttons. */
export function Segmented<T extends string>(props: { value: T; options: { value: T; label: string }[]; onChange: (v: T) => void; label: string; disabled?: boolean }) {
  return (
    <div className="segmented" role="radiogroup" aria-label={props.label}>
      {props.options.map((o) => (
        <button
          key={o.value}
          type="button"
          role="radio"
          aria-checked={props.value === o.value}
          className={props.value === o.value ? 'on' : ''}
          disabled={props.disabled}
          onClick={() => props.onChange(o.value)}
        >
          {o.label}
        </button>
      ))}
    </div>
  );
}

export function ErrorNote(props: { children: ReactNode; testId?: string }) {
  return (
    <div className="error-note" role="alert" data-testid={props.testId}>
      {props.children}
    </div>
  );
}

/** A drop target for files or a folder (highlighted while something is dragged over it); drops are ignored while disabled. */
export function DropZone(props: { testId: string; disabled?: boolean; onDrop: (dt: DataTransfer) => void; children: ReactNode }) {
  const [over, setOver] = useState(false);
  return (
    <div
      className={`dropzone ${over ? 'over' : ''}`}
      data-testid={props.testId}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        if (!props.disabled) props.onDrop(e.dataTransfer);
      }}
    >
      {props.children}
    </div>
  );
}
