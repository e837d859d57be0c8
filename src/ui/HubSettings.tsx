/** Hub settings: the base URL (a mirror, or the stand-in Hub of the tests) and the access token for gated repos. */
import { DEFAULT_HUB_URL, hubEndpoint, hubUrlProblem, settingsActions as S, useSettings } from '../state/settings';
import { Check } from './controls';

export function HubSettings() {
  const s = useSettings();
  const problem = hubUrlProblem(s.hubUrl);
  const endpoint = hubEndpoint(s);
  return (
    <details className="hub-settings" data-testid="hub-settings">
      <summary>
        Hub settings <span className="muted small">· {endpoint}{s.token.trim() ? ' · token set' : ''}</span>
      </summary>
      {/* A form, so the password field is where browsers expect it; Enter does nothing else. */}
      <form className="grid2" onSubmit={(e) => e.preventDefault()}>
        <div className="field wide">
          <label htmlFor="hub-url">Hub URL</label>
          <input
            id="hub-url"
            data-testid="hub-url-input"
            className={`mono ${problem ? 'invalid' : ''}`}
            aria-invalid={!!problem}
            title={problem ?? undefined}
            value={s.hubUrl}
            placeholder={DEFAULT_HUB_URL}
            spellCheck={false}
            onChange={(e) => S.setHubUrl(e.target.value)}
          />
          {problem && <span className="error-text small">Hub URL {problem}.</span>}
        </div>
        <div className="field wide">
          <label htmlFor="hub-token">Access token (gated and private repos)</label>
          <div className="row">
            <input
              id="hub-token"
              data-testid="hub-token-input"
              type="password"
              className="mono grow"
              autoComplete="off"
              value={s.token}
              placeholder="hf_…"
              spellCheck={false}
              onChange={(e) => S.setToken(e.target.value)}
            />
            <Check label="Remember" checked={s.rememberToken} onChange={S.setRememberToken} hint="Keep the token in this browser's localStorage" />
          </div>
          <span className="hint">
            Read access is enough: <a href={`${endpoint}/settings/tokens`} target="_blank" rel="noreferrer">{endpoint}/settings/tokens</a>. It is sent only to{' '}
            {endpoint}, never to the download CDN, and {s.rememberToken ? 'kept in this browser (localStorage)' : 'forgotten when the tab closes'}.
          </span>
        </div>
      </form>
    </details>
  );
}
