/**
 * A stand-in Hugging Face Hub for tests and e2e, on 127.0.0.1 with the Hub's URL layout and error headers:
 *   GET  /api/models/{owner}/{name}/tree/{rev}        file listing (the JSON shape listFiles reads)
 *   GET|HEAD /{owner}/{name}/resolve/{rev}/{file}     ETag, Content-Length, Accept-Ranges, Range -> 206,
 *                                                     X-Repo-Commit; *.safetensors / *.bin answer 302 to a
 *                                                     "CDN" path (same origin, or a second port = another origin)
 *   401 RepoNotFound without a token / 404 RepoNotFound with one (as the Hub does, so private repos stay hidden),
 *   404 RevisionNotFound, 404 EntryNotFound, 401/403 GatedRepo for gated repos without the right Bearer token.
 * Writes (hub-write.ts): POST /api/repos/create, preupload, LFS batch + PUT, NDJSON commit, as @huggingface/hub's
 * createRepo / commit call them; pushed files are then served like the others (private repos only with a token).
 * Fault injection: cutAfter(file, n) closes the connection after n body bytes, once; a throttle slows bodies so
 * a test can cancel mid-file. Every request is logged (method, path, Range, Authorization, status, bytes sent).
 *
 * Standalone (e2e): `npx tsx test/support/hub-server.ts --port 5199` serves defaultRepos().
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { datasetRequest, type DatasetSpec } from './hub-datasets';
import { writeRequest } from './hub-write';

export interface RepoFiles {
  /** A folder whose top-level files are served. */
  dir?: string;
  /** Files added or replaced (in-memory), and names from `dir` to hide. */
  files?: Record<string, Uint8Array | string>;
  exclude?: string[];
}

export interface RepoSpec extends RepoFiles {
  /** The token with access; others get 401/403 GatedRepo on file downloads (listing stays public, as on the Hub). */
  gated?: string;
  /** Extra revisions (branches, tags, commits); the spec itself is "main". */
  revisions?: Record<string, RepoFiles>;
  /** Hidden (RepoNotFound) from requests without one of writeTokens, as the Hub hides private repos. */
  private?: boolean;
}

export interface HubServerOptions {
  repos: Record<string, RepoSpec>;
  /** Dataset repos (hub-datasets.ts): /api/datasets/... and /datasets/.../resolve/... */
  datasets?: Record<string, DatasetSpec>;
  /** Where *.safetensors / *.bin redirect: a path on this server, a second server (another origin), or nowhere. */
  redirectLfs?: 'same-origin' | 'cross-origin' | false;
  throttle?: { chunkBytes: number; delayMs: number } | null;
  port?: number;
  /** Tokens that may create repos and commit (default hf_write_token); other hf_ tokens get 403. */
  writeTokens?: string[];
}

export interface LoggedRequest {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  range: string | null;
  authorization: string | null;
  status: number;
  /** Body bytes written. */
  bytes: number;
}

export interface HubServer {
  url: string;
  /** Origin the LFS redirects go to (== url for same-origin). */
  cdnUrl: string;
  requests: LoggedRequest[];
  /** Closes the connection after `bytes` body bytes of the next response for `file`. */
  cutAfter(file: string, bytes: number): void;
  setThrottle(t: { chunkBytes: number; delayMs: number } | null): void;
  close(): Promise<void>;
}

const LFS = /\.(safetensors|bin|pt|pth|onnx)$/;
const sha = (alg: string, b: Uint8Array | string) => createHash(alg).update(b).digest('hex');

function loadFiles(spec: RepoFiles): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  if (spec.dir && existsSync(spec.dir)) {
    for (const n of readdirSync(spec.dir)) {
      const p = join(spec.dir, n);
      if (statSync(p).isFile() && !spec.exclude?.includes(n)) out.set(n, new Uint8Array(readFileSync(p)));
    }
  }
  for (const [n, v] of Object.entries(spec.files ?? {})) out.set(n, typeof v === 'string' ? new TextEncoder().encode(v) : v);
  return out;
}

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, HEAD, POST, PUT, OPTIONS',
  'Access-Control-Allow-Headers': 'Authorization, Range, If-Range, Accept, Content-Type, X-Request-Id',
  'Access-Control-Expose-Headers': 'ETag, Content-Range, Content-Length, Accept-Ranges, X-Error-Code, X-Error-Message, X-Repo-Commit, X-Linked-Size, X-Linked-ETag, Link',
};

export async function startHubServer(opts: HubServerOptions): Promise<HubServer> {
  const repos = new Map<string, { spec: RepoSpec; revs: Map<string, Map<string, Uint8Array>> }>();
  for (const [id, spec] of Object.entries(opts.repos)) {
    const revs = new Map([['main', loadFiles(spec)]]);
    for (const [r, f] of Object.entries(spec.revisions ?? {})) revs.set(r, loadFiles(f));
    repos.set(id, { spec, revs });
  }
  const requests: LoggedRequest[] = [];
  const lfs = new Map<string, Uint8Array>();
  const cuts = new Map<string, number>();
  let throttle = opts.throttle ?? null;
  const redirect = opts.redirectLfs ?? 'same-origin';
  let hubUrl = '';
  let cdnUrl = '';

  const send = (req: IncomingMessage, res: ServerResponse, log: LoggedRequest, status: number, headers: Record<string, string | number>, body?: Uint8Array | string) => {
    log.status = status;
    res.writeHead(status, { ...CORS, ...headers });
    if (req.method === 'HEAD' || body === undefined) return void res.end();
    const b = typeof body === 'string' ? new TextEncoder().encode(body) : body;
    log.bytes = b.length;
    res.end(b);
  };
  const error = (req: IncomingMessage, res: ServerResponse, log: LoggedRequest, status: number, code: string, message: string) =>
    send(req, res, log, status, { 'Content-Type': 'application/json', 'X-Error-Code': code, 'X-Error-Message': message }, JSON.stringify({ error: message }));

  /** Serves bytes with Range support, the throttle and fault injection. */
  const serveBytes = async (req: IncomingMessage, res: ServerResponse, log: LoggedRequest, name: string, bytes: Uint8Array, extra: Record<string, string>) => {
    const size = bytes.length;
    const headers: Record<string, string | number> = {
      'Accept-Ranges': 'bytes', ETag: `"${sha(LFS.test(name) ? 'sha256' : 'sha1', bytes)}"`,
      'Content-Type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream', ...extra,
    };
    let start = 0;
    let end = size - 1;
    let status = 200;
    const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (m && (m[1] || m[2])) {
      if (m[1]) {
        start = Number(m[1]);
        if (m[2]) end = Math.min(Number(m[2]), size - 1);
      } else start = Math.max(0, size - Number(m[2]));
      if (start >= size || start > end) return send(req, res, log, 416, { ...headers, 'Content-Range': `bytes */${size}` }, '');
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
    headers['Content-Length'] = end - start + 1;
    log.status = status;
    res.writeHead(status, { ...CORS, ...headers });
    if (req.method === 'HEAD') return void res.end();
    let body = bytes.subarray(start, end + 1);
    let cut = cuts.get(name);
    if (cut !== undefined && cut < body.length) {
      cuts.delete(name); // once, and only on a response it actually shortens (not a small header read)
      body = body.subarray(0, cut);
    } else cut = undefined;
    const step = throttle?.chunkBytes ?? body.length;
    for (let p = 0; p < body.length && !res.destroyed; p += step) {
      const part = body.subarray(p, p + step);
      await new Promise<void>((r) => res.write(part, () => r()));
      log.bytes += part.length;
      if (throttle && p + step < body.length) await new Promise((r) => setTimeout(r, throttle!.delayMs));
    }
    if (cut !== undefined) res.socket?.end(); // close early: the client sees fewer bytes than Content-Length
    else res.end();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, server: 'hub' | 'cdn') => {
    const u = new URL(req.url ?? '/', 'http://x');
    const log: LoggedRequest = {
      server, method: req.method ?? 'GET', path: u.pathname, range: req.headers.range ?? null,
      authorization: req.headers.authorization ?? null, status: 0, bytes: 0,
    };
    requests.push(log);
    if (req.method === 'OPTIONS') return send(req, res, log, 204, {});
    const seg = u.pathname.split('/').slice(1).map(decodeURIComponent);
    const written = await writeRequest({
      req, server, seg, hubUrl, cdnUrl, repos, lfs, writeTokens: opts.writeTokens ?? ['hf_write_token'],
      json: (status, body, headers) => send(req, res, log, status, { 'Content-Type': 'application/json', ...headers }, JSON.stringify(body)),
      error: (status, code, message) => send(req, res, log, status, { 'Content-Type': 'application/json', ...(code ? { 'X-Error-Code': code } : {}), 'X-Error-Message': message }, JSON.stringify({ error: message })),
    });
    if (written) return;
    if (server === 'hub' && (seg[0] === 'datasets' || (seg[0] === 'api' && seg[1] === 'datasets'))) {
      return datasetRequest(opts.datasets ?? {}, seg, {
        req, res, hubUrl,
        send: (status, headers, body) => send(req, res, log, status, headers, body),
        error: (status, code, message) => error(req, res, log, status, code, message),
        serveBytes: (name, bytes, extra) => serveBytes(req, res, log, name, bytes, extra),
      });
    }

    if (seg[0] === 'cdn') {
      const [, owner, name, rev, ...file] = seg;
      const files = repos.get(`${owner}/${name}`)?.revs.get(rev);
      const bytes = files?.get(file.join('/'));
      if (!bytes) return send(req, res, log, 404, {}, 'NoSuchKey');
      return serveBytes(req, res, log, file.join('/'), bytes, {});
    }
    if (server === 'cdn') return send(req, res, log, 404, {}, 'not found');

    const api = seg[0] === 'api' && seg[1] === 'models' && seg[4] === 'tree';
    const [owner, name, kind, rev, ...rest] = api ? seg.slice(2) : seg;
    if (!api && kind !== 'resolve') return send(req, res, log, 404, {}, 'not found');
    const repo = repos.get(`${owner}/${name}`);
    const auth = req.headers.authorization ?? null;
    const hidden = repo?.spec.private && !(opts.writeTokens ?? ['hf_write_token']).some((t) => auth === `Bearer ${t}`);
    if (!repo || hidden) return error(req, res, log, auth ? 404 : 401, 'RepoNotFound', 'Repository not found');
    const files = repo.revs.get(rev);
    if (!files) return error(req, res, log, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    const commit = sha('sha1', `${owner}/${name}@${rev}`);
    if (api) {
      const list = [...files].map(([path, b]) => ({
        type: 'file', oid: sha('sha1', b), size: b.length, path,
        ...(LFS.test(path) ? { lfs: { oid: sha('sha256', b), size: b.length, pointerSize: 134 } } : {}),
      }));
      return send(req, res, log, 200, { 'Content-Type': 'application/json' }, JSON.stringify(list));
    }
    if (repo.spec.gated && auth !== `Bearer ${repo.spec.gated}`) {
      return auth
        ? error(req, res, log, 403, 'GatedRepo', `Access to model ${owner}/${name} is restricted and you are not in the authorized list.`)
        : error(req, res, log, 401, 'GatedRepo', `Access to model ${owner}/${name} is restricted. You must have access to it and be authenticated to access it.`);
    }
    const file = rest.join('/');
    const bytes = files.get(file);
    if (!bytes) return error(req, res, log, 404, 'EntryNotFound', `${file} does not exist on "${rev}"`);
    const meta = { 'X-Repo-Commit': commit };
    if (redirect && LFS.test(file)) {
      const base = redirect === 'cross-origin' ? cdnUrl : hubUrl;
      const loc = `${base}/cdn/${owner}/${name}/${encodeURIComponent(rev)}/${file}?X-Amz-Signature=stand-in`;
      return send(req, res, log, 302, { ...meta, Location: loc, 'X-Linked-Size': bytes.length, 'X-Linked-ETag': `"${sha('sha256', bytes)}"` }, '');
    }
    return serveBytes(req, res, log, file, bytes, meta);
  };

  const make = (which: 'hub' | 'cdn') => createServer((req, res) => {
    handle(req, res, which).catch((e) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(e));
    });
  });
  const listen = (s: Server, port: number) => new Promise<string>((r) => s.listen(port, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
  const servers = [make('hub')];
  hubUrl = await listen(servers[0], opts.port ?? 0);
  cdnUrl = hubUrl;
  if (redirect === 'cross-origin') {
    servers.push(make('cdn'));
    cdnUrl = await listen(servers[1], 0);
  }
  return {
    url: hubUrl, cdnUrl, requests,
    cutAfter: (file, bytes) => void cuts.set(file, bytes),
    setThrottle: (t) => void (throttle = t),
    close: () => Promise.all(servers.map((s) => new Promise<void>((r) => {
      s.closeAllConnections();
      s.close(() => r());
    }))).then(() => undefined),
  };
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The repos e2e uses: the fixture models, a gated copy (token hf_test_token), and error cases. */
export function defaultRepos(root = ROOT): Record<string, RepoSpec> {
  const fx = (n: string) => join(root, 'test/fixtures/models', n);
  const repos: Record<string, RepoSpec> = {
    'fixtures/gpt2-tiny': { dir: fx('gpt2-tiny'), revisions: { v1: { dir: fx('gpt2-tiny') } } },
    'fixtures/gpt2-tiny-seqcls': { dir: fx('gpt2-tiny-seqcls') },
    'fixtures/llama-tiny': { dir: fx('llama-tiny') },
    'fixtures/bert-tiny-seqcls': { dir: fx('bert-tiny-seqcls') },
    'fixtures/gated-gpt2': { dir: fx('gpt2-tiny'), gated: 'hf_test_token' },
    'fixtures/pytorch-only': { files: { 'config.json': readFileSync(join(fx('gpt2-tiny'), 'config.json')), 'pytorch_model.bin': new Uint8Array(64) } },
    'fixtures/unsupported': { files: { 'config.json': JSON.stringify({ model_type: 'mamba', d_model: 64 }), 'model.safetensors': new Uint8Array(16) } },
  };
  // The built-in model, once its weights exist (another part of the project produces them).
  const sotu = join(root, 'public/models/sotu-gpt2');
  if (existsSync(join(sotu, 'config.json')) && existsSync(join(sotu, 'model.safetensors'))) repos['peft-studio/sotu-gpt2'] = { dir: sotu };
  return repos;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--port');
  const port = i > 0 ? Number(process.argv[i + 1]) : Number(process.env.HUB_PORT ?? 5199);
  startHubServer({ repos: defaultRepos(), port }).then((s) => {
    console.log(`stand-in Hub at ${s.url} serving ${Object.keys(defaultRepos()).join(', ')}`);
  });
}
