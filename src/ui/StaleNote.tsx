/**
 * "From the previous run (…)" beside an adapter or results made by a run whose task, method or model differs
 * from what the studio is set to now (staleNote() in state/feedback.ts decides, for every panel alike).
 */
import { staleNote, type RunSetup, type StaleSubject } from '../state/feedback';
import { useProject } from '../state/project';

export function PreviousRunNote(props: { from: RunSetup | null | undefined; what: StaleSubject; testId: string }) {
  const task = useProject((s) => s.task);
  const method = useProject((s) => s.method);
  const model = useProject((s) => s.model.label);
  const note = staleNote(props.from, { task, method, model }, props.what);
  if (!note) return null;
  return (
    <p className="issues stale-note" role="status" data-testid={props.testId}>
      {note}
    </p>
  );
}
