/** The project's own controls (New project, Reset to defaults) and the notice of a crashed training worker. */
import { newProject, resetToDefaults, restartWorker } from '../state/actions';
import { useProject } from '../state/project';
import { useRun } from '../state/run';

const NEW_PROJECT_CONFIRM =
  'Start a new project?\n\nThe saved project is forgotten: the built-in model, the default dataset, default targets, method and training ' +
  'settings. Cached models and uploaded datasets stay in this browser (delete them in their lists).';

export function ProjectButtons() {
  const running = useRun((s) => s.state !== 'idle');
  return (
    <div className="project-buttons">
      <button
        type="button"
        data-testid="reset-defaults"
        disabled={running}
        title="Training and method settings back to their defaults; the model, targets and data stay"
        onClick={resetToDefaults}
      >
        Reset to defaults
      </button>
      <button
        type="button"
        data-testid="new-project"
        disabled={running}
        title="Forget the saved project and start again on the built-in model"
        onClick={() => {
          if (window.confirm(NEW_PROJECT_CONFIRM)) void newProject();
        }}
      >
        New project
      </button>
    </div>
  );
}

export function WorkerCrashNotice() {
  const crash = useProject((s) => s.workerCrash);
  if (!crash) return null;
  return (
    <div className="crash-notice" role="alert" data-testid="worker-crash">
      <span>
        <strong>The training worker crashed:</strong> {crash}
      </span>
      <button type="button" className="primary" data-testid="restart-worker" onClick={() => void restartWorker()}>
        Restart worker
      </button>
      <span className="muted small">Every setting is kept; the backend, model and data are set up again in a new worker.</span>
    </div>
  );
}
