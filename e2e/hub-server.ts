/**
 * The stand-in Hub for e2e (test/support/hub-server.ts with defaultRepos()), plus a small control server the
 * specs use to slow downloads down and to read the request log (which proves what was and was not fetched):
 *   GET  /requests          the log, as JSON       POST /reset     clears the log and the throttle
 *   POST /throttle?chunk=N&delay=MS                 sends N bytes, then waits MS, until the body is done
 * Run: npx tsx e2e/hub-server.ts --port 5199 --control 5198
 */
import { createServer } from 'node:http';
import { datasetRepos } from '../test/support/dataset-fixtures';
import { nerRepos } from '../test/support/ner-fixtures';
import { defaultRepos, startHubServer } from '../test/support/hub-server';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};

const hub = await startHubServer({ repos: defaultRepos(), datasets: { ...datasetRepos(), ...nerRepos() }, port: arg('--port', 5199) });
const controlPort = arg('--control', 5198);

createServer((req, res) => {
  const u = new URL(req.url ?? '/', 'http://x');
  const json = (v: unknown) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(v));
  };
  if (req.method === 'GET' && u.pathname === '/requests') return json(hub.requests);
  if (req.method === 'POST' && u.pathname === '/reset') {
    hub.requests.length = 0;
    hub.setThrottle(null);
    return json({ ok: true });
  }
  if (req.method === 'POST' && u.pathname === '/throttle') {
    const chunkBytes = Number(u.searchParams.get('chunk'));
    const delayMs = Number(u.searchParams.get('delay'));
    hub.setThrottle(chunkBytes > 0 ? { chunkBytes, delayMs } : null);
    return json({ ok: true });
  }
  res.writeHead(404);
  res.end();
}).listen(controlPort, '127.0.0.1');

console.log(`stand-in Hub at ${hub.url} (control on ${controlPort}) serving ${Object.keys(defaultRepos()).join(', ')}`);
