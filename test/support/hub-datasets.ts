/**
 * Dataset repos for the stand-in Hub (hub-server.ts), with the Hub's URL layout and error headers:
 *   GET  /api/datasets/{owner}/{name}/tree/{rev}[/path]          file listing (flat, as listFiles reads it)
 *   GET  /api/datasets/{owner}/{name}/parquet                    the Parquet conversion: {config: {split: [urls]}}
 *   GET  /api/datasets/{owner}/{name}/parquet/{config}/{split}/{n}.parquet
 *                                                                302 to the file in the refs/convert/parquet revision
 *   GET|HEAD /datasets/{owner}/{name}/resolve/{rev}/{path}       bytes, Range -> 206 (also suffix ranges)
 * A gated dataset lists publicly but answers 401/403 GatedRepo for its files and its Parquet listing without the
 * right token; a missing dataset is 401 RepoNotFound without a token and 404 with one, as on the Hub.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface DatasetSpec {
  /** Files of the main revision by path (e.g. "data/train-00000-of-00002.parquet"). */
  files?: Record<string, Uint8Array | string>;
  /** Other revisions' files. */
  revisions?: Record<string, Record<string, Uint8Array | string>>;
  /** The token with access. */
  gated?: string;
  /** The Hub's Parquet conversion: config -> split -> its files, served as {config}/{split}/NNNN.parquet. */
  converted?: Record<string, Record<string, Uint8Array[]>>;
}

export interface DatasetContext {
  req: IncomingMessage;
  res: ServerResponse;
  hubUrl: string;
  send: (status: number, headers: Record<string, string | number>, body?: Uint8Array | string) => void;
  error: (status: number, code: string, message: string) => void;
  serveBytes: (name: string, bytes: Uint8Array, extra: Record<string, string>) => Promise<void>;
}

const CONVERT = 'refs/convert/parquet';
const enc = (v: Uint8Array | string) => (typeof v === 'string' ? new TextEncoder().encode(v) : v);
const pad = (n: number) => String(n).padStart(4, '0');

function revisionFiles(spec: DatasetSpec, rev: string): Map<string, Uint8Array> | null {
  if (rev === CONVERT) {
    if (!spec.converted) return null;
    const out = new Map<string, Uint8Array>();
    for (const [config, splits] of Object.entries(spec.converted)) {
      for (const [split, files] of Object.entries(splits)) files.forEach((b, i) => out.set(`${config}/${split}/${pad(i)}.parquet`, b));
    }
    return out;
  }
  const files = rev === 'main' ? spec.files : spec.revisions?.[rev];
  return files ? new Map(Object.entries(files).map(([k, v]) => [k, enc(v)])) : null;
}

/** Answers a /datasets/... or /api/datasets/... request; `seg` is the decoded path split at "/". */
export async function datasetRequest(datasets: Record<string, DatasetSpec>, seg: string[], c: DatasetContext): Promise<void> {
  const api = seg[0] === 'api';
  const [owner, name, kind, ...rest] = api ? seg.slice(2) : seg.slice(1);
  const id = `${owner}/${name}`;
  const spec = datasets[id];
  const auth = c.req.headers.authorization ?? null;
  if (!spec) return c.error(auth ? 404 : 401, 'RepoNotFound', 'Repository not found');
  const gate = () => {
    if (!spec.gated || auth === `Bearer ${spec.gated}`) return false;
    if (auth) c.error(403, 'GatedRepo', `Access to dataset ${id} is restricted and you are not in the authorized list.`);
    else c.error(401, 'GatedRepo', `Access to dataset ${id} is restricted. You must have access to it and be authenticated to access it.`);
    return true;
  };

  if (api && kind === 'tree') {
    const [rev] = rest;
    const files = revisionFiles(spec, rev);
    if (!files) return c.error(404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    const under = rest.slice(1).join('/');
    const list = [...files].filter(([p]) => !under || p.startsWith(`${under}/`)).map(([path, b]) => ({ type: 'file', oid: `${b.length}`, size: b.length, path }));
    return c.send(200, { 'Content-Type': 'application/json' }, JSON.stringify(list));
  }
  if (api && kind === 'parquet') {
    if (gate()) return;
    if (!spec.converted) return c.error(404, 'ParquetNotFound', 'No parquet conversion');
    if (rest.length === 0) {
      const body = Object.fromEntries(Object.entries(spec.converted).map(([config, splits]) => [
        config, Object.fromEntries(Object.entries(splits).map(([split, files]) => [split, files.map((_, i) => `${c.hubUrl}/api/datasets/${id}/parquet/${config}/${split}/${i}.parquet`)])),
      ]));
      return c.send(200, { 'Content-Type': 'application/json' }, JSON.stringify(body));
    }
    const [config, split, file] = rest;
    const n = Number(file.replace(/\.parquet$/, ''));
    const loc = `${c.hubUrl}/datasets/${id}/resolve/${encodeURIComponent(CONVERT)}/${config}/${split}/${pad(n)}.parquet`;
    return c.send(302, { Location: loc }, '');
  }
  if (!api && kind === 'resolve') {
    const [rev, ...path] = rest;
    const files = revisionFiles(spec, rev);
    if (!files) return c.error(404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    if (gate()) return;
    const file = path.join('/');
    const bytes = files.get(file);
    if (!bytes) return c.error(404, 'EntryNotFound', `${file} does not exist on "${rev}"`);
    return c.serveBytes(file, bytes, { 'X-Repo-Commit': `${id}@${rev}`.replace(/[^\w]/g, '').slice(0, 40) });
  }
  return c.send(404, {}, 'not found');
}
