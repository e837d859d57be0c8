/**
 * Push to the Hub against the stand-in Hub's write endpoints (test/support/hub-write.ts): the repo is created
 * private, the adapter files arrive byte-identical (the weights through the LFS batch + PUT on another origin),
 * the token goes to the Hub's origin only, and 401 / 403 / 409 / no token / no network say what to do.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../src/engine/errors';
import { HubError } from '../src/engine/io/http-source';
import { modelCard, pushToHub, type PushFiles } from '../src/engine/io/hub-push';
import { startHubServer, type HubServer } from './support/hub-server';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ADAPTER = join(ROOT, 'test/fixtures/adapters/gpt2-lora');
const TOKEN = 'hf_write_token';
let hub: HubServer;
let tmp: string;

const weights = new Uint8Array(readFileSync(join(ADAPTER, 'adapter_model.safetensors')));
const configText = readFileSync(join(ADAPTER, 'adapter_config.json'), 'utf8');
const config = JSON.parse(configText) as Record<string, unknown>;

function files(readme = modelCard({ config, baseModel: 'fixtures/gpt2-tiny', task: 'CAUSAL_LM', repo: 'me/x' })): PushFiles {
  return { 'adapter_model.safetensors': weights, 'adapter_config.json': configText, 'README.md': readme };
}

/** A file as the Hub serves it now (following the LFS redirect to the CDN server, without the token there). */
async function readBack(repo: string, file: string, token: string | null = TOKEN): Promise<Response> {
  const res = await fetch(`${hub.url}/${repo}/resolve/main/${file}`, { headers: token ? { Authorization: `Bearer ${token}` } : {}, redirect: 'manual' });
  const loc = res.headers.get('location');
  return loc ? fetch(loc) : res;
}

async function pushError(p: Promise<unknown>): Promise<EngineError> {
  try {
    await p;
  } catch (e) {
    return e as EngineError;
  }
  throw new Error('expected the push to fail');
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'peft-push-'));
  hub = await startHubServer({ repos: {}, redirectLfs: 'cross-origin', writeTokens: [TOKEN] });
});

afterAll(async () => {
  await hub.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('pushToHub', () => {
  it('creates a private repo and uploads the adapter byte-identical, the token only to the Hub origin', { timeout: 30_000 }, async () => {
    hub.requests.length = 0;
    const phases: string[] = [];
    const r = await pushToHub({ repo: 'me/gpt2-lora', files: files(), token: TOKEN, endpoint: hub.url, onProgress: (p) => phases.push(p.phase) });
    expect(r).toMatchObject({ repo: 'me/gpt2-lora', url: `${hub.url}/me/gpt2-lora`, created: true });
    expect(r.files.sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
    expect(phases).toEqual(expect.arrayContaining(['creating', 'preuploading', 'uploadingLargeFiles', 'committing']));

    const got = new Uint8Array(await (await readBack('me/gpt2-lora', 'adapter_model.safetensors')).arrayBuffer());
    expect(got.length).toBe(weights.length);
    expect(Buffer.from(got).equals(Buffer.from(weights))).toBe(true);
    expect(await (await readBack('me/gpt2-lora', 'adapter_config.json')).text()).toBe(configText);
    const readme = await (await readBack('me/gpt2-lora', 'README.md')).text();
    expect(readme).toMatch(/^---\nbase_model: "fixtures\/gpt2-tiny"\nlibrary_name: peft\n/);
    // Private: hidden without the token.
    expect((await readBack('me/gpt2-lora', 'adapter_config.json', null)).status).toBe(401);

    const writes = hub.requests.filter((q) => q.method !== 'GET' && q.method !== 'HEAD');
    expect(writes.map((q) => `${q.server} ${q.method} ${q.path.replace(/[0-9a-f]{64}/, 'OID')}`)).toEqual([
      'hub POST /api/repos/create',
      'hub POST /api/models/me/gpt2-lora/preupload/main',
      'hub POST /me/gpt2-lora.git/info/lfs/objects/batch',
      'cdn PUT /lfs-upload/OID',
      'hub POST /api/models/me/gpt2-lora/commit/main',
    ]);
    for (const q of writes) expect(q.authorization).toBe(q.server === 'hub' ? `Bearer ${TOKEN}` : null);
    expect(hub.requests.filter((q) => q.server === 'cdn').every((q) => q.authorization === null)).toBe(true);
  });

  it('a public repo is readable without a token; a name that exists is a 409 unless existOk', { timeout: 30_000 }, async () => {
    await pushToHub({ repo: 'me/public-one', files: files(), token: TOKEN, endpoint: hub.url, private: false });
    expect((await readBack('me/public-one', 'adapter_config.json', null)).status).toBe(200);

    const e = await pushError(pushToHub({ repo: 'me/public-one', files: files(), token: TOKEN, endpoint: hub.url }));
    expect(e).toBeInstanceOf(HubError);
    expect(e).toMatchObject({ code: 'HUB', status: 409, hubCode: 'RepoExists' });
    expect(e.message).toMatch(/me\/public-one already exists .*Upload into it/);

    hub.requests.length = 0;
    const r = await pushToHub({ repo: 'me/public-one', files: files('# second\n'), token: TOKEN, endpoint: hub.url, existOk: true });
    expect(r.created).toBe(false);
    expect(hub.requests.filter((q) => q.method === 'PUT')).toHaveLength(0);
    expect(await (await readBack('me/public-one', 'README.md')).text()).toBe('# second\n');
    // The weights were stored already: the LFS batch answers without an upload action, nothing is PUT again.
    expect(Buffer.from(await (await readBack('me/public-one', 'adapter_model.safetensors')).arrayBuffer()).equals(Buffer.from(weights))).toBe(true);
  });

  it('401 (bad token), 403 (read-only token), no token and no network are messages that say what to do', { timeout: 30_000 }, async () => {
    const bad = await pushError(pushToHub({ repo: 'me/nope', files: files(), token: 'hf_expired', endpoint: hub.url }));
    expect(bad).toMatchObject({ code: 'HUB', status: 401 });
    expect(bad.message).toMatch(/rejected the access token .*invalid or expired.*write access at .*\/settings\/tokens/);

    const ro = await pushError(pushToHub({ repo: 'me/nope', files: files(), token: 'hf_read_token', endpoint: hub.url }));
    expect(ro).toMatchObject({ code: 'HUB', status: 403 });
    expect(ro.message).toMatch(/may not create repos under "me".*write access/);

    hub.requests.length = 0;
    const none = await pushError(pushToHub({ repo: 'me/nope', files: files(), token: '', endpoint: hub.url }));
    expect(none).toMatchObject({ code: 'BAD_ARGUMENT' });
    expect(none.message).toMatch(/needs an access token with write access/);
    expect(hub.requests).toHaveLength(0);

    const id = await pushError(pushToHub({ repo: 'just-a-name', files: files(), token: TOKEN, endpoint: hub.url }));
    expect(id.message).toMatch(/owner\/name/);

    const net = await pushError(pushToHub({ repo: 'me/nope', files: files(), token: TOKEN, endpoint: 'http://127.0.0.1:9' }));
    expect(net).toMatchObject({ code: 'HUB', retryable: true });
    expect(net.message).toMatch(/Could not reach http:\/\/127\.0\.0\.1:9 .*check the Hub URL/);
  });

  it('the model card has the Hub front matter, the config, metrics and a usage snippet', () => {
    const card = modelCard({
      config, baseModel: 'openai-community/gpt2', task: 'CAUSAL_LM', repo: 'me/sotu', data: 'State of the Union paragraphs.',
      steps: 40, final: { eval_loss: 3.2109876, loss: 3.5 }, best: { metric: 'eval_loss', value: 3.1, step: 30 },
    });
    expect(card.split('---\n')[1]).toBe('base_model: "openai-community/gpt2"\nlibrary_name: peft\npipeline_tag: text-generation\ntags:\n- "peft-studio"\n- "lora"\n- "base_model:adapter:openai-community/gpt2"\n');
    expect(card).toContain('| eval_loss | 3.2110 |');
    expect(card).toContain('Best eval_loss: 3.1000 at step 30.');
    expect(card).toContain('State of the Union paragraphs.');
    expect(card).toContain('PeftModel.from_pretrained(base, "me/sotu")');
    expect(card).toContain(JSON.stringify(config, null, 2));
    // A local folder is not a Hub id: no base_model in the front matter.
    expect(modelCard({ config, baseModel: 'public/models/sotu-gpt2', task: 'CAUSAL_LM' })).not.toMatch(/^base_model:/m);
  });
});

describe('CLI push', () => {
  it('pushes an adapter folder with HF_ENDPOINT / HF_TOKEN and prints the repo URL', { timeout: 60_000 }, async () => {
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        join(ROOT, 'node_modules/.bin/tsx'), ['src/cli/main.ts', 'push', '--adapter', ADAPTER, '--repo', 'me/from-cli', '--public', '--base-model', 'fixtures/gpt2-tiny'],
        { cwd: ROOT, timeout: 50_000, env: { ...process.env, HF_ENDPOINT: hub.url, HF_TOKEN: TOKEN } },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
      );
    });
    expect(run.stderr).toContain('created public repo me/from-cli');
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe(`${hub.url}/me/from-cli`);
    const got = Buffer.from(await (await readBack('me/from-cli', 'adapter_model.safetensors', null)).arrayBuffer());
    expect(got.equals(Buffer.from(weights))).toBe(true);

    const again = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        join(ROOT, 'node_modules/.bin/tsx'), ['src/cli/main.ts', 'push', '--adapter', ADAPTER, '--repo', 'me/from-cli', '--token', 'hf_bad'],
        { cwd: ROOT, timeout: 50_000, env: { ...process.env, HF_ENDPOINT: hub.url, HF_TOKEN: '' } },
        (err, _o, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr }),
      );
    });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/rejected the access token/);
  });
});

describe('CLI push files', () => {
  it('a train --out folder with metrics.jsonl pushes training_curves.svg and the card links it', async () => {
    const { adapterPushFiles } = await import('../src/cli/push');
    const dir = join(tmp, 'run-out');
    mkdirSync(dir);
    cpSync(join(ADAPTER, 'adapter_model.safetensors'), join(dir, 'adapter_model.safetensors'));
    cpSync(join(ADAPTER, 'adapter_config.json'), join(dir, 'adapter_config.json'));
    const rows = [{ step: 0, eval_loss: 7 }, { step: 1, loss: 6.9 }, { step: 2, loss: 6.5 }, { step: 3, loss: 6.1 }, { step: 3, eval_loss: 6.2, eval_accuracy: 0.1 }];
    writeFileSync(join(dir, 'metrics.jsonl'), `${rows.map((r) => JSON.stringify(r)).join('\n')}\n{"step": 4, "lo`);
    const f = adapterPushFiles(dir, { repo: 'me/x' });
    expect(Object.keys(f).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors', 'training_curves.svg']);
    expect(f['README.md']).toContain('![Training and evaluation curves](training_curves.svg)');
    const svg = String(f['training_curves.svg']);
    const count = (series: string) => (new RegExp(`data-series="${series}"[^>]*points="([^"]*)"`).exec(svg)?.[1] ?? '').split(' ').length;
    expect([count('train loss'), count('eval loss'), count('eval_accuracy')]).toEqual([3, 2, 1]);
    // Without metrics.jsonl (an adapter folder PEFT saved): no chart, no link.
    expect(Object.keys(adapterPushFiles(ADAPTER, { repo: 'me/x' }))).not.toContain('training_curves.svg');
  });
});

describe('the studio push action', () => {
  it('pushes the run\'s adapter with the Hub settings\' token; a taken name offers to upload into it', { timeout: 30_000 }, async () => {
    const { pushAdapter, usePush } = await import('../src/state/push-actions');
    const { useRun } = await import('../src/state/run');
    const { settingsActions: S } = await import('../src/state/settings');
    S.setHubUrl(hub.url);
    S.setToken(TOKEN);
    useRun.setState({
      checkpoint: { runId: 1, step: 12, task: 'CAUSAL_LM', receivedAt: 0, files: { 'adapter_model.safetensors': weights.slice().buffer, 'adapter_config.json': configText } },
      metrics: [{ step: 12, epoch: 1, loss: 2.5, lr: 0, gradNorm: 1, tokensPerSec: 0 }],
      evals: [{ step: 12, evalLoss: 2.75, accuracy: 0.4 }],
    } as never);
    await pushAdapter({ repo: 'me/studio', private: true });
    expect(usePush.getState().error).toBeNull();
    expect(usePush.getState().result).toMatchObject({ repo: 'me/studio', url: `${hub.url}/me/studio`, created: true });
    expect(Buffer.from(await (await readBack('me/studio', 'adapter_model.safetensors')).arrayBuffer()).equals(Buffer.from(weights))).toBe(true);
    const card = await (await readBack('me/studio', 'README.md')).text();
    expect(card).toContain('for 12 optimizer steps');
    expect(card).toContain('| eval_loss | 2.7500 |');
    // The run's curves beside the card, linked relatively: one train-loss point and one eval point.
    expect(card).toContain('![Training and evaluation curves](training_curves.svg)');
    const svg = await (await readBack('me/studio', 'training_curves.svg')).text();
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg.match(/<polyline data-series="(train loss|eval loss|eval_accuracy \(next token\))"/g)).toHaveLength(3);

    await pushAdapter({ repo: 'me/studio', private: true });
    expect(usePush.getState().error).toMatchObject({ exists: true });
    const { setBaseModelName } = await import('../src/state/push-actions');
    setBaseModelName('openai-community/gpt2');
    await pushAdapter({ repo: 'me/studio', private: true, existOk: true });
    expect(usePush.getState()).toMatchObject({ error: null, result: { created: false }, busy: false });
    // The name set in the Export panel is the pushed config's base_model_name_or_path and the card's base_model.
    const pushed = await (await readBack('me/studio', 'adapter_config.json')).text();
    expect(pushed).toBe(configText.replace('"models/gpt2-tiny"', '"openai-community/gpt2"'));
    expect(await (await readBack('me/studio', 'README.md')).text()).toContain('base_model: "openai-community/gpt2"');
    setBaseModelName('');
  });
});
