/**
 * Studio settings that outlive a model: the Hub base URL (persisted in localStorage) and the Hub access token,
 * kept in memory only unless the person ticks "Remember" (then localStorage too). The token is handed to the
 * worker with each Hub load; the engine sends it only to the Hub URL's own origin.
 */
import { create } from 'zustand';

export const DEFAULT_HUB_URL = 'https://huggingface.co';
const KEY_URL = 'peft-studio.hubUrl';
const KEY_TOKEN = 'peft-studio.hubToken';

export interface SettingsState {
  /** As typed; empty means the default. */
  hubUrl: string;
  token: string;
  rememberToken: boolean;
}

function read(key: string): string | null {
  try {
    return globalThis.localStorage?.getItem(key) ?? null;
  } catch {
    return null; // storage disabled (some private modes, sandboxed frames)
  }
}

function write(key: string, value: string | null): void {
  try {
    if (value === null || value === '') globalThis.localStorage?.removeItem(key);
    else globalThis.localStorage?.setItem(key, value);
  } catch {
    // not persisted; the in-memory value still applies
  }
}

const storedToken = read(KEY_TOKEN);

export const useSettings = create<SettingsState>()(() => ({
  hubUrl: read(KEY_URL) ?? '',
  token: storedToken ?? '',
  rememberToken: storedToken !== null,
}));

/** The Hub URL to use: the setting trimmed, without trailing slashes, or the default. */
export function hubEndpoint(s: SettingsState = useSettings.getState()): string {
  return s.hubUrl.trim().replace(/\/+$/, '') || DEFAULT_HUB_URL;
}

/** Why the Hub URL setting is not usable, or null. */
export function hubUrlProblem(value: string): string | null {
  const v = value.trim();
  if (!v) return null;
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || u.protocol === 'http:' ? null : 'must start with https:// or http://';
  } catch {
    return `not a URL; it should look like ${DEFAULT_HUB_URL}`;
  }
}

export const settingsActions = {
  setHubUrl(hubUrl: string) {
    useSettings.setState({ hubUrl });
    write(KEY_URL, hubUrl.trim() ? hubUrl.trim() : null);
  },
  setToken(token: string) {
    useSettings.setState({ token });
    if (useSettings.getState().rememberToken) write(KEY_TOKEN, token.trim() || null);
  },
  setRememberToken(rememberToken: boolean) {
    useSettings.setState({ rememberToken });
    write(KEY_TOKEN, rememberToken ? useSettings.getState().token.trim() || null : null);
  },
};
