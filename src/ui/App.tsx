/** The studio: setup panels on the left, the run (live charts, export, playground) on the right. */
import { useProject } from '../state/project';
import { DataPanel } from './DataPanel';
import { ExportPanel } from './ExportPanel';
import { ImportAdapter } from './ImportAdapter';
import { LiveView } from './LiveView';
import { MethodPanel } from './MethodPanel';
import { ModelPanel } from './ModelPanel';
import { Playground } from './Playground';
import { ProjectButtons, WorkerCrashNotice } from './ProjectBar';
import { RunHistory } from './RunHistory';
import { TargetsPanel } from './TargetsPanel';
import { TrainingPanel } from './TrainingPanel';

export function App() {
  const backend = useProject((s) => s.backend);
  return (
    <div className="app">
      <header className="topbar">
        <h1>
          PEFT Studio <span className="muted">fine-tune in your browser</span>
        </h1>
        <div className="topbar-right">
          <ProjectButtons />
          <span className={`pill ${backend.status}`} title={backend.reason ?? backend.error}>
            {backend.status === 'ready' ? `backend: ${backend.name}` : backend.status === 'error' ? 'no backend' : 'starting backend…'}
          </span>
        </div>
      </header>
      <WorkerCrashNotice />
      <main className="layout">
        <div className="setup">
          <ModelPanel />
          <TargetsPanel />
          <MethodPanel />
          <DataPanel />
          <TrainingPanel />
        </div>
        <div className="results">
          <LiveView />
          <ExportPanel />
          <ImportAdapter />
          <Playground />
          <RunHistory />
        </div>
      </main>
    </div>
  );
}
