/**
 * Push to the Hub: a repo name (owner/name), private or public, the access token (the Hub settings' one, shared
 * with downloads: in memory unless "Remember" there), the adapter or the merged model, progress, the repo link, and
 * errors; a taken name offers to upload into that repo.
 */
import { useState } from 'react';
import { pushAdapter, pushMerged, usePush } from '../state/push-actions';
import { useRun } from '../state/run';
import { STALE_PUSH } from '../state/feedback';
import { PreviousRunNote } from './StaleNote';
import { hubEndpoint, settingsActions as S, useSettings } from '../state/settings';
import { Field } from './controls';

const PHASE: Record<string, string> = {
  creating: 'Creating the repo…',
  preuploading: 'Preparing the upload…',
  merging: 'Merging the adapter into the base weights…',
  uploadingLargeFiles: 'Uploading',
  committing: 'Committing…',
};

export function PushToHub() {
  const p = usePush();
  const hasAdapter = useRun((s) => !!s.checkpoint);
  const from = useRun((s) => s.checkpoint?.from);
  const settings = useSettings();
  const [repo, setRepo] = useState('');
  const [priv, setPriv] = useState(true);
  const [what, setWhat] = useState<'adapter' | 'merged'>('adapter');
  const ok = /^[^/\s]+\/[^/\s]+$/.test(repo.trim());
  const token = settings.token.trim();
  const push = (existOk: boolean) => void (what === 'merged' ? pushMerged({ repo, private: priv, existOk }) : pushAdapter({ repo, private: priv, existOk }));
  const pr = p.progress;

  return (
    <div className="beyond" data-testid="push-to-hub">
      <h3>Push to the Hub</h3>
      <form className="row wrap" onSubmit={(e) => { e.preventDefault(); if (ok && token && hasAdapter) push(false); }}>
        <Field label="Repo" hint="owner/name: your user name or an organisation, then a new repo's name">
          {(id) => <input id={id} data-testid="push-repo" className="mono" value={repo} placeholder="your-name/my-adapter" spellCheck={false} onChange={(e) => setRepo(e.target.value)} size={24} />}
        </Field>
        <Field label="Access token" hint={`A token with write access, sent only to ${hubEndpoint(settings)}; the same as in Hub settings (kept in memory unless Remember is ticked there)`}>
          {(id) => <input id={id} data-testid="push-token" type="password" autoComplete="off" value={settings.token} placeholder="hf_…" onChange={(e) => S.setToken(e.target.value)} size={14} />}
        </Field>
        <Field label="What" hint="The adapter (two small files PEFT loads onto the base model), or the merged model: the adapter folded into the base weights, a plain transformers model">
          {(id) => (
            <select id={id} data-testid="push-what" value={what} onChange={(e) => setWhat(e.target.value as 'adapter' | 'merged')}>
              <option value="adapter">adapter</option>
              <option value="merged">merged model</option>
            </select>
          )}
        </Field>
        <label className="small" title="Only you (and your organisation) can see a private repo">
          <input type="checkbox" data-testid="push-private" checked={priv} onChange={(e) => setPriv(e.target.checked)} /> private
        </label>
        <button type="submit" data-testid="push-button" disabled={!hasAdapter || !ok || !token || p.busy} title="Creates the repo and uploads adapter_model.safetensors, adapter_config.json and a model card README.md">
          Push to the Hub
        </button>
      </form>
      <PreviousRunNote from={from} what={STALE_PUSH} testId="push-stale" />
      <p className="muted small">
        {!hasAdapter ? 'Train first: the latest adapter of the run is pushed. ' : ''}
        Goes to {hubEndpoint(settings)}{token ? '' : `; needs a token with write access (${hubEndpoint(settings)}/settings/tokens)`}.
      </p>
      {p.busy && (
        <p className="small" data-testid="push-progress">
          {pr ? PHASE[pr.phase] : 'Starting…'}
          {pr?.file ? ` ${pr.file}` : ''}
          {pr?.fraction !== undefined ? ` ${Math.round(pr.fraction * 100)}%` : ''}
        </p>
      )}
      {p.result && (
        <p className="small" data-testid="push-result">
          {p.result.created ? 'Created' : 'Uploaded into'}{' '}
          <a href={p.result.url} target="_blank" rel="noreferrer">{p.result.repo}</a>: {p.result.files.join(', ')}.
        </p>
      )}
      {p.error && (
        <p className="error-text small" data-testid="push-error">
          {p.error.message}{' '}
          {p.error.exists && (
            <button type="button" data-testid="push-into-existing" disabled={p.busy} onClick={() => push(true)}>
              Upload into it
            </button>
          )}
        </p>
      )}
    </div>
  );
}
