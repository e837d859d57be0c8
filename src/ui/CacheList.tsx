/**
 * Models kept in the browser's download cache (OPFS): size, complete or partial, load again, delete; and the
 * site's storage: used of granted, and whether the browser keeps it (persistent) or may clear it.
 */
import { deleteCached, loadCachedModel } from '../state/actions';
import { useProject } from '../state/project';
import { DEFAULT_HUB_URL } from '../state/settings';
import { useRun } from '../state/run';
import { bytes } from './format';

export function CacheList() {
  const cache = useProject((s) => s.cache);
  const running = useRun((s) => s.state !== 'idle');
  const loading = useProject((s) => s.model.status === 'loading');
  const total = cache.models.reduce((a, m) => a + m.bytes, 0);
  const storage = useProject((s) => s.storage);
  return (
    <>
      {cache.persistent === false && (
        <p className="hint warn" data-testid="cache-not-persistent">
          This browser offers no persistent storage here (a private window?): downloaded models are kept only for this session.
        </p>
      )}
      <details className="cache" data-testid="cache-list">
        <summary>
          Cached models <span className="muted small">· {cache.models.length ? `${cache.models.length}, ${bytes(total)}` : 'none'}</span>
        </summary>
        {cache.error && <p className="error-text small">{cache.error}</p>}
        {!cache.models.length && <p className="hint">Models downloaded from the Hub are kept here and load again without the network.</p>}
        {cache.models.length > 0 && (
          <table className="cache-table">
            <tbody>
              {cache.models.map((m) => {
                const id = m.revision === 'main' ? m.repo : `${m.repo}@${m.revision}`;
                return (
                  <tr key={`${m.endpoint} ${m.repo} ${m.revision}`} data-testid="cache-row" data-repo={m.repo} data-revision={m.revision}>
                    <td className="mono">
                      {id}
                      {m.endpoint !== DEFAULT_HUB_URL && <div className="muted small">{m.endpoint}</div>}
                    </td>
                    <td className="mono">{bytes(m.bytes)}</td>
                    <td>{m.complete ? <span className="muted small">complete</span> : <span className="warn small" title="Loading it again continues the download">partial</span>}</td>
                    <td className="actions">
                      <button type="button" className="link" disabled={running || loading} onClick={() => void loadCachedModel(m)}>
                        {m.complete ? 'Load' : 'Continue'}
                      </button>
                      <button type="button" className="link danger" data-testid="cache-delete" disabled={loading} onClick={() => void deleteCached(m)}>
                        Delete
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </details>
      {storage && (
        <p className="hint storage-line" data-testid="storage-usage" data-persistent={String(storage.persistent)}>
          Storage: {bytes(storage.usage)} of {bytes(storage.quota)} used
          {storage.persistent === true && ', persistent'}
          {storage.persistent === false && ', not persistent (the browser may clear it when space runs low)'}
          <span className="muted"> · models, uploaded datasets and this project's settings stay in this browser</span>
        </p>
      )}
    </>
  );
}
