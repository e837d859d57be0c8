/**
 * The CLI against a stand-in Hub (HF_ENDPOINT): inspect reads only headers, train downloads and trains, and
 * every Hub failure is a one-line message with a non-zero exit.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultRepos, startHubServer, type HubServer } from './support/hub-server';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = join(ROOT, 'node_modules/.bin/tsx');
let hub: HubServer;
let tmp: string;

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      TSX, ['src/cli/main.ts', ...args],
      { cwd: ROOT, timeout: 60_000, env: { ...process.env, HF_ENDPOINT: hub.url, HF_TOKEN: '', PEFT_STUDIO_CACHE: join(tmp, 'cache'), ...env } },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

const errorLine = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('error:')).join('\n');

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'peft-cli-hub-'));
  hub = await startHubServer({ repos: defaultRepos(), redirectLfs: 'same-origin' });
});

afterAll(async () => {
  await hub.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('CLI with HF_ENDPOINT', () => {
  it('inspect owner/name reads config.json and headers only', async () => {
    const out = join(tmp, 'tree.json');
    const r = await cli(['inspect', 'fixtures/gpt2-tiny', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const tree = JSON.parse(readFileSync(out, 'utf8'));
    expect(tree.total_params).toBe(172288);
    expect(tree.modules).toEqual(JSON.parse(readFileSync(join(ROOT, 'test/fixtures/models/gpt2-tiny/named_modules.json'), 'utf8')));
    const weightGets = hub.requests.filter((q) => q.path.endsWith('model.safetensors') && q.method === 'GET');
    expect(weightGets.every((q) => q.range !== null)).toBe(true);
  });

  it('train owner/name@rev downloads the model and writes the adapter', async () => {
    const data = join(tmp, 'data.jsonl');
    writeFileSync(data, Array.from({ length: 8 }, (_, i) => JSON.stringify({ input_ids: [5 + i, 6 + i, 7 + i, 8 + i] })).join('\n'));
    const out = join(tmp, 'adapter');
    const r = await cli(['train', '--model', 'fixtures/gpt2-tiny@v1', '--data', data, '--task', 'causal_lm', '--method', 'lora',
      '--target-modules', 'c_attn', '--steps', '2', '--batch-size', '4', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg.base_model_name_or_path).toBe('fixtures/gpt2-tiny@v1');
    expect(cfg.target_modules).toEqual(['c_attn']);
    // A second run comes from the cache folder: no further weight download.
    const before = hub.requests.filter((q) => q.path.endsWith('model.safetensors') && q.method === 'GET').length;
    const again = await cli(['logits', '--model', 'fixtures/gpt2-tiny@v1', '--input-ids', '1,2,3', '--out', join(tmp, 'l.safetensors')]);
    expect(again.code, again.stderr).toBe(0);
    expect(hub.requests.filter((q) => q.path.endsWith('model.safetensors') && q.method === 'GET').length).toBe(before);
  });

  it.each([
    [['inspect', 'nobody/nothing'], /not found/i],
    [['inspect', 'fixtures/gpt2-tiny@no-such-rev'], /revision/i],
    [['inspect', 'fixtures/gated-gpt2'], /gated[\s\S]*token|token[\s\S]*gated/i],
    [['inspect', 'fixtures/pytorch-only'], /only safetensors/i],
    [['inspect', 'fixtures/unsupported'], /"mamba" model[\s\S]*Supported model types: gpt2, llama, qwen2, mistral, bert/],
  ])('%j fails with a clear message', async (args, message) => {
    const r = await cli(args as string[]);
    expect(r.code).not.toBe(0);
    const line = errorLine(r.stderr);
    expect(line.split('\n')).toHaveLength(1);
    expect(line, line).toMatch(message as RegExp);
  });

  it('a gated repo works with HF_TOKEN', async () => {
    const r = await cli(['inspect', 'fixtures/gated-gpt2', '--out', join(tmp, 'g.json')], { HF_TOKEN: 'hf_test_token' });
    expect(r.code, r.stderr).toBe(0);
  });
});
