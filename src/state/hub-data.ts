/** The Data panel's "From the Hub" choice as the worker's request: the Hub URL and token of the settings now. */
import type { HubDataSpec } from '../worker/hub-data';
import { hubEndpoint, useSettings } from './settings';

/** What the person chose: dataset id, splits and how many rows; the Hub URL and token are added per request. */
export type HubDataChoice = Omit<HubDataSpec, 'endpoint' | 'token'>;

export function hubDataRequest(c: HubDataChoice | null): HubDataSpec | undefined {
  if (!c) return undefined;
  const st = useSettings.getState();
  return { ...c, endpoint: hubEndpoint(st), token: st.token.trim() || null };
}
