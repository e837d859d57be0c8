/**
 * Hugging Face Hub access: repo ids, the endpoint setting, a fetch that only ever sends the access token to the
 * Hub's own origin, and FileSources over HTTP (the Hub's /{repo}/resolve/{revision}/{file} layout, or a plain
 * folder URL such as the built-in model).
 *
 * Listing uses @huggingface/hub's listFiles (the /api/models/{repo}/tree/{rev} endpoint, with pagination).
 * Everything that moves bytes uses fetch directly: the library's downloadFile returns a whole Blob (no progress,
 * no byte ranges, no resume) and prefers the Xet protocol in browsers; we need HTTP Range reads for
 * header-first inspection and resumable streaming. See docs/hub.md.
 */
import { listFiles } from '@huggingface/hub';
import { EngineError } from '../errors';
import { HttpSource, HubError, originOf, type FetchLike } from './http-source';
import type { CacheKey, FileEntry } from './model-source';

export { HttpSource, HubError, errorInfo, isRetryable, urlSource, type FetchLike } from './http-source';

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

export interface RepoRef {
  /** `owner/name` (or a legacy single name such as `gpt2`). */
  repo: string;
  revision: string;
}

// Hub naming rules (huggingface_hub validate_repo_id): letters, digits, - _ . ; no "--" or ".."; no leading or
// trailing - or .; at most 96 characters.
const NAME = /^(?![-.])(?!.*(?:--|\.\.))[A-Za-z0-9_.-]{1,96}(?<![-.])$/;

function badId(input: string): EngineError {
  return new EngineError(
    'BAD_ARGUMENT',
    `"${input}" is not a Hub model id. Write it as owner/name or owner/name@revision, e.g. openai-community/gpt2 or Qwen/Qwen2.5-0.5B@main.`,
  );
}

/**
 * Parses `owner/name`, `owner/name@revision` (a branch, tag, commit or `refs/pr/N`), a legacy single `name`, or a
 * Hub page URL (`https://huggingface.co/owner/name[/tree/rev]`). Throws BAD_ARGUMENT with an example otherwise.
 */
export function parseRepoId(input: string, defaultRevision = 'main'): RepoRef {
  let s = input.trim();
  let revision: string | undefined;
  const url = /^https?:\/\/[^/]+\/(.*)$/i.exec(s);
  if (url) {
    const parts = url[1].split(/[?#]/)[0].split('/').filter(Boolean);
    if (parts[0] === 'models') parts.shift();
    const tree = parts.findIndex((p) => p === 'tree' || p === 'resolve' || p === 'blob');
    if (tree >= 0) {
      revision = parts[tree + 1] ? decodeURIComponent(parts[tree + 1]) : undefined;
      parts.length = tree;
    }
    s = parts.join('/');
  } else {
    const at = s.indexOf('@');
    if (at >= 0) {
      revision = s.slice(at + 1);
      s = s.slice(0, at);
      if (!revision) throw badId(input);
    }
  }
  const segs = s.split('/');
  if (segs.length < 1 || segs.length > 2 || !segs.every((x) => NAME.test(x))) throw badId(input);
  const rev = revision ?? defaultRevision;
  if (!rev || /\s/.test(rev) || rev.startsWith('/') || rev.endsWith('/') || rev.includes('..')) throw badId(input);
  return { repo: segs.join('/'), revision: rev };
}

/** `owner/name` or `owner/name@rev` (revision omitted when it is main). */
export function formatRepoRef(ref: RepoRef): string {
  return ref.revision === 'main' ? ref.repo : `${ref.repo}@${ref.revision}`;
}

/** Normalizes the Hub URL setting (studio setting, HF_ENDPOINT): empty -> https://huggingface.co, no trailing /. */
export function normalizeEndpoint(value?: string | null): string {
  const v = (value ?? '').trim();
  if (!v) return DEFAULT_HUB_ENDPOINT;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new EngineError('BAD_ARGUMENT', `Hub URL "${v}" is not a URL; it should look like ${DEFAULT_HUB_ENDPOINT}.`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new EngineError('BAD_ARGUMENT', `Hub URL "${v}" must start with https:// or http://.`);
  return (u.origin + u.pathname).replace(/\/+$/, '');
}

export interface HubClientOptions {
  endpoint?: string | null;
  /** Access token (hf_...). Held only by this object, in memory; remembering it is the caller's choice. */
  token?: string | null;
  fetch?: FetchLike;
}

export class HubClient {
  readonly endpoint: string;
  readonly origin: string;
  // A private field: not enumerable, so it never shows up in JSON.stringify, structured clones or logs.
  #token: string | null;
  private readonly fetchImpl: FetchLike;
  /** Browsers hide manual redirects (opaqueredirect); then we let fetch follow them (see fetch below). */
  private followRedirects = false;

  constructor(o: HubClientOptions = {}) {
    this.endpoint = normalizeEndpoint(o.endpoint);
    this.origin = new URL(this.endpoint).origin;
    this.#token = o.token?.trim() || null;
    this.fetchImpl = o.fetch ?? ((input, init) => fetch(input, init));
  }

  get hasToken(): boolean {
    return this.#token !== null;
  }

  setToken(token: string | null): void {
    this.#token = token?.trim() || null;
  }

  /** The repo's page, where a gated model's conditions are accepted. */
  repoUrl(repo: string): string {
    return `${this.endpoint}/${repo}`;
  }

  resolveUrl(ref: RepoRef, file: string): string {
    return `${this.endpoint}/${ref.repo}/resolve/${encodeURIComponent(ref.revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
  }

  /**
   * fetch with the token attached only when the URL's origin is the Hub's. Redirects are followed by hand so the
   * rule holds for every hop: the Hub redirects LFS/Xet files to a CDN on another origin, which must not see the
   * token. Browsers do not reveal manual redirects; there fetch follows them itself, and the Fetch standard drops
   * Authorization on a cross-origin redirect.
   */
  async fetch(input: string, init: RequestInit = {}): Promise<Response> {
    let url = input;
    for (let hop = 0; hop < 10; hop++) {
      const headers = new Headers(init.headers);
      headers.delete('authorization');
      if (this.#token && originOf(url) === this.origin) headers.set('Authorization', `Bearer ${this.#token}`);
      const res = await this.fetchImpl(url, { ...init, headers, redirect: this.followRedirects ? 'follow' : 'manual' });
      if (res.type === 'opaqueredirect') {
        this.followRedirects = true;
        hop--;
        continue;
      }
      const loc = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && loc) {
        await res.body?.cancel().catch(() => undefined);
        url = new URL(loc, url).href;
        continue;
      }
      return res;
    }
    throw new HubError(`Too many redirects while fetching ${input}.`);
  }

  /** A FileSource for a repo snapshot: `owner/name[@rev]` or a parsed ref. */
  source(ref: RepoRef | string): HubSource {
    return new HubSource(this, typeof ref === 'string' ? parseRepoId(ref) : ref);
  }
}

class NoListing extends Error {}

/** A Hub repo at one revision. */
export class HubSource extends HttpSource {
  declare readonly cacheKey: CacheKey;
  readonly ref: RepoRef;
  readonly client: HubClient;
  /** The commit the revision pointed at (X-Repo-Commit), once a file has been read. */
  commit: string | null = null;
  private listing: Promise<FileEntry[] | null> | null = null;

  constructor(client: HubClient, ref: RepoRef) {
    const onHub = client.endpoint === DEFAULT_HUB_ENDPOINT ? 'on the Hub' : `on ${client.endpoint}`;
    super({
      kind: 'hub', label: `${formatRepoRef(ref)} ${onHub}`, id: ref.repo, revision: ref.revision,
      cacheKey: { endpoint: client.endpoint, repo: ref.repo, revision: ref.revision },
      urlFor: (f) => client.resolveUrl(ref, f),
      fetch: (url, init) => client.fetch(url, init),
    });
    this.ref = ref;
    this.client = client;
  }

  protected override async get(name: string, headers: Record<string, string>, signal?: AbortSignal, noStore = false): Promise<Response> {
    const res = await super.get(name, headers, signal, noStore);
    this.commit ??= res.headers.get('x-repo-commit');
    return res;
  }

  override list(signal?: AbortSignal): Promise<FileEntry[] | null> {
    this.listing ??= this.fetchListing(signal).catch((e) => {
      this.listing = null; // do not remember failures: a retry lists again
      throw e;
    });
    return this.listing;
  }

  private async fetchListing(signal?: AbortSignal): Promise<FileEntry[] | null> {
    // The library only builds URLs and pages through results; our fetch adds the token (same origin only) and
    // turns Hub errors into clear messages before the library sees them.
    const guarded = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      const url = String(input instanceof Request ? input.url : input);
      let res: Response;
      try {
        res = await this.client.fetch(url, { ...init, signal });
      } catch (e) {
        if (signal?.aborted) throw new EngineError('CANCELLED', `Listing ${this.label} was cancelled.`);
        throw this.networkError('the file list', e);
      }
      if (res.ok && (res.headers.get('content-type') ?? '').includes('json')) return res;
      if (res.ok || (!res.headers.get('x-error-code') && [400, 404, 405, 501].includes(res.status))) {
        await res.body?.cancel().catch(() => undefined);
        throw new NoListing(); // a mirror without the /api endpoints: fall back to probing files
      }
      throw await this.httpError(res, null);
    };
    try {
      const out: FileEntry[] = [];
      for await (const e of listFiles({
        repo: this.ref.repo, revision: encodeURIComponent(this.ref.revision), hubUrl: this.client.endpoint, fetch: guarded as typeof fetch,
      })) {
        if (e.type === 'file') out.push({ name: e.path, size: e.lfs?.size ?? e.size });
      }
      return out;
    } catch (e) {
      if (e instanceof NoListing) return null;
      throw e;
    }
  }

  override async stat(name: string, signal?: AbortSignal): Promise<FileEntry | null> {
    const files = await this.list(signal);
    if (files) return files.find((f) => f.name === name) ?? null;
    return super.stat(name, signal);
  }

  protected override isAbsent(res: Response, _name: string): boolean {
    const code = res.headers.get('x-error-code');
    return code === 'EntryNotFound' || (res.status === 404 && !code);
  }

  /** Maps the Hub's X-Error-Code (RepoNotFound, RevisionNotFound, GatedRepo, ...) to a message a person can act on. */
  protected override async httpError(res: Response, name: string | null): Promise<EngineError> {
    const code = res.headers.get('x-error-code');
    const hubMsg = res.headers.get('x-error-message');
    await res.body?.cancel().catch(() => undefined);
    const { repo, revision } = this.ref;
    const page = this.client.repoUrl(repo);
    const o = { status: res.status, hubCode: code };
    const token = this.client.hasToken;
    if (code === 'RepoNotFound' || (res.status === 404 && name === null && !code)) {
      return new HubError(`Repository ${repo} was not found on ${this.client.endpoint}. Check the id (owner/name, e.g. openai-community/gpt2)${token ? '' : '; if it is private, add an access token'}.`, o);
    }
    if (code === 'RevisionNotFound') {
      return new HubError(`Revision "${revision}" was not found in ${repo}. Use an existing branch, tag or commit hash (see ${page}/tree/main).`, o);
    }
    if (code === 'GatedRepo') {
      return new HubError(res.status === 401 || !token
        ? `${repo} is a gated model: accept its conditions at ${page} while logged in, then add an access token (from ${this.client.endpoint}/settings/tokens) to download it.`
        : `${repo} is a gated model and this access token has no access to it yet: request access at ${page}, and check that the token may read gated repos.`, o);
    }
    const what = name ? `${name} of ${repo}` : repo;
    const extra = hubMsg ? ` (${hubMsg})` : '';
    if (res.status === 401) {
      return new HubError(token
        ? `${this.client.endpoint} rejected the access token for ${what} (HTTP 401)${extra}: it is invalid or expired.`
        : `${what} needs an access token (HTTP 401)${extra}: the repo is private or gated; see ${page}.`, o);
    }
    if (res.status === 403) return new HubError(`Access to ${what} is forbidden (HTTP 403)${extra}; see ${page}.`, o);
    if (res.status === 429) return new HubError(`${this.client.endpoint} is rate-limiting requests (HTTP 429); wait a minute, then retry.`, { ...o, retryable: true });
    return new HubError(`Reading ${what} from ${this.client.endpoint} failed: HTTP ${res.status}${extra}${res.status >= 500 ? '; retry in a moment' : ''}.`, { ...o, retryable: res.status >= 500 });
  }
}

