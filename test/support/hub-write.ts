/**
 * The stand-in Hub's write side: the endpoints @huggingface/hub's createRepo and commit call, storing what
 * arrives so a test can read it back through /resolve:
 *   POST /api/repos/create                          {name, organization, visibility, type} -> {url, name, id};
 *                                                   401 for an unknown token, 403 for a read-only one, 409 if taken
 *   POST /api/models/{owner}/{name}/preupload/{rev} which files go through LFS (*.safetensors and the like)
 *   POST /{owner}/{name}.git/info/lfs/objects/batch  "basic" transfer: a PUT href on the CDN server (another
 *                                                   origin when redirectLfs is 'cross-origin'), none if stored
 *   PUT  /lfs-upload/{oid}                          the bytes, checked against the oid (sha256) and size
 *   POST /api/models/{owner}/{name}/commit/{rev}     NDJSON: header, file (base64), lfsFile (oid), deletedFile
 * No Xet: the batch answers "basic", and the client falls back to it as it does on a Hub without Xet.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export interface WriteRepo {
  spec: { private?: boolean };
  revs: Map<string, Map<string, Uint8Array>>;
}

export interface WriteContext {
  req: IncomingMessage;
  server: 'hub' | 'cdn';
  seg: string[];
  hubUrl: string;
  cdnUrl: string;
  repos: Map<string, WriteRepo>;
  /** LFS objects by sha256, uploaded but maybe not committed yet. */
  lfs: Map<string, Uint8Array>;
  /** Tokens that may write; READ_ONLY ones get 403, any other 401. */
  writeTokens: string[];
  json: (status: number, body: unknown, headers?: Record<string, string>) => void;
  error: (status: number, code: string | null, message: string) => void;
}

/** Tokens the stand-in knows as valid but read-only (hf_test_token opens the gated fixture). */
const READ_ONLY = ['hf_read_token', 'hf_test_token'];
const LFS = /\.(safetensors|bin|pt|pth|onnx|gguf)$/;

async function body(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Handles a write request; false when the path is not one of them. */
export async function writeRequest(c: WriteContext): Promise<boolean> {
  const { req, seg } = c;
  const m = req.method;
  if (m === 'PUT' && seg[0] === 'lfs-upload') {
    const bytes = new Uint8Array(await body(req));
    const oid = seg[1];
    const size = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('size'));
    if (createHash('sha256').update(bytes).digest('hex') !== oid || bytes.length !== size) {
      c.error(400, null, `the uploaded bytes do not match oid ${oid} / size ${size}`);
    } else {
      c.lfs.set(oid, bytes);
      c.json(200, {}, { ETag: `"${oid}"` });
    }
    return true;
  }
  if (c.server !== 'hub' || m !== 'POST') return false;
  const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? null;
  const lfsBatch = seg.length === 6 && seg[1].endsWith('.git') && seg.slice(2).join('/') === 'info/lfs/objects/batch';
  const create = seg.join('/') === 'api/repos/create';
  const repoApi = seg[0] === 'api' && seg[1] === 'models' && (seg[4] === 'preupload' || seg[4] === 'commit');
  if (!create && !lfsBatch && !repoApi) return false;
  const text = (await body(req)).toString('utf8');
  if (!auth || !(c.writeTokens.includes(auth) || READ_ONLY.includes(auth))) {
    c.error(401, null, 'Invalid credentials in Authorization header');
    return true;
  }
  if (!c.writeTokens.includes(auth)) {
    c.error(403, null, 'You don\'t have the rights to create or write to this repo: the token is read-only');
    return true;
  }
  if (create) {
    const p = JSON.parse(text) as { name: string; organization: string; visibility?: string; type?: string };
    const id = `${p.organization}/${p.name}`;
    if (c.repos.has(id)) {
      c.json(409, { error: 'You already created this model repo', url: `${c.hubUrl}/${id}` });
      return true;
    }
    c.repos.set(id, { spec: { private: p.visibility === 'private' }, revs: new Map([['main', new Map()]]) });
    c.json(200, { url: `${c.hubUrl}/${id}`, name: id, id: createHash('sha1').update(id).digest('hex').slice(0, 24) });
    return true;
  }
  const id = lfsBatch ? `${seg[0]}/${seg[1].slice(0, -4)}` : `${seg[2]}/${seg[3]}`;
  const repo = c.repos.get(id);
  if (!repo) {
    c.error(404, 'RepoNotFound', 'Repository not found');
    return true;
  }
  if (lfsBatch) {
    const p = JSON.parse(text) as { objects: { oid: string; size: number }[]; transfers: string[] };
    c.json(200, {
      transfer: 'basic',
      objects: p.objects.map((o) => ({
        oid: o.oid, size: o.size, authenticated: true,
        ...(c.lfs.has(o.oid) ? {} : { actions: { upload: { href: `${c.cdnUrl}/lfs-upload/${o.oid}?size=${o.size}&X-Amz-Signature=stand-in`, expires_in: 900 } } }),
      })),
    }, { 'Content-Type': 'application/vnd.git-lfs+json' });
    return true;
  }
  const rev = seg[5] ?? 'main';
  if (seg[4] === 'preupload') {
    const p = JSON.parse(text) as { files: { path: string; size: number }[] };
    c.json(200, { files: p.files.map((f) => ({ path: f.path, uploadMode: LFS.test(f.path) ? 'lfs' : 'regular', shouldIgnore: false })) });
    return true;
  }
  // commit: apply every operation, or none
  const lines = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { key: string; value: Record<string, unknown> });
  const files = new Map(repo.revs.get(rev) ?? []);
  for (const { key, value } of lines) {
    const path = String(value.path ?? '');
    if (key === 'file') files.set(path, new Uint8Array(Buffer.from(String(value.content), value.encoding === 'base64' ? 'base64' : 'utf8')));
    else if (key === 'lfsFile') {
      const bytes = c.lfs.get(String(value.oid));
      if (!bytes) {
        c.error(422, null, `LFS object ${String(value.oid)} for ${path} was not uploaded`);
        return true;
      }
      files.set(path, bytes);
    } else if (key === 'deletedFile') files.delete(path);
  }
  repo.revs.set(rev, files);
  const oid = createHash('sha1').update(text).digest('hex');
  c.json(200, { success: true, commitOid: oid, commitUrl: `${c.hubUrl}/${id}/commit/${oid}` });
  return true;
}
