/** SEQ_CLS: the latest evaluation's confusion matrix on the validation split and each class's precision/recall/F1. */
import type { EvalMetrics } from '../worker/protocol';
import { thousands } from './format';

export function ConfusionMatrix(props: { evals: EvalMetrics[]; labels?: string[]; testId?: string }) {
  const e = [...props.evals].reverse().find((x) => x.confusion && x.classes);
  if (!e?.confusion || !e.classes) return null;
  const name = (k: number) => props.labels?.[k] ?? String(k);
  const max = Math.max(1, ...e.confusion.flat());
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  return (
    <section className="confusion" data-testid={props.testId ?? 'confusion'} data-step={e.step} aria-label="Confusion matrix">
      <h3>
        Validation at step {e.step}: rows are the true class, columns the predicted one
      </h3>
      <div className="confusion-grid">
        <table className="confusion-matrix">
          <thead>
            <tr>
              <th scope="col">true \ predicted</th>
              {e.confusion.map((_, k) => (
                <th key={k} scope="col">
                  {name(k)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {e.confusion.map((row, t) => (
              <tr key={t}>
                <th scope="row">{name(t)}</th>
                {row.map((v, p) => (
                  <td
                    key={p}
                    data-cell={`${t}-${p}`}
                    className={t === p ? 'diag' : ''}
                    style={{ background: `rgba(${t === p ? '37, 99, 235' : '185, 28, 28'}, ${(0.08 + 0.5 * (v / max)).toFixed(3)})` }}
                  >
                    {thousands(v)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
        <table className="class-scores" data-testid="class-scores">
          <thead>
            <tr>
              <th scope="col">class</th>
              <th scope="col">precision</th>
              <th scope="col">recall</th>
              <th scope="col">F1</th>
              <th scope="col">rows</th>
            </tr>
          </thead>
          <tbody>
            {e.classes.map((c, k) => (
              <tr key={k} data-class={k}>
                <th scope="row">{name(k)}</th>
                <td>{pct(c.precision)}</td>
                <td>{pct(c.recall)}</td>
                <td>{pct(c.f1)}</td>
                <td>{thousands(c.support)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
