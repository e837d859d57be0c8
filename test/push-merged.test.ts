/**
 * push --merged: the adapter merged into the base model (as the merge command writes it: config.json, sharded
 * safetensors + index, generation_config.json) and uploaded to the stand-in Hub with a merged-model card. The
 * uploaded shards hold PEFT's merge_and_unload() weights (the fixture's merged.safetensors).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main';
import { readSafetensorsFile } from '../src/engine/io/node-files';
import { FIX, fixtureTensors } from './helpers';
import { startHubServer, type HubServer } from './support/hub-server';

const TOKEN = 'hf_write_token';
let hub: HubServer;
let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'peft-push-merged-'));
  hub = await startHubServer({ repos: {}, redirectLfs: 'cross-origin', writeTokens: [TOKEN] });
});

afterAll(async () => {
  await hub.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function readBack(repo: string, file: string): Promise<Response> {
  const res = await fetch(`${hub.url}/${repo}/resolve/main/${file}`, { headers: { Authorization: `Bearer ${TOKEN}` }, redirect: 'manual' });
  const loc = res.headers.get('location');
  return loc ? fetch(loc) : res;
}

describe('CLI push --merged', () => {
  it('merges and uploads config.json, the shards + index and a card naming the base model and saying merged', { timeout: 60_000 }, async () => {
    const code = await main([
      'push', '--merged', '--model', join(FIX, 'models', 'gpt2-tiny'), '--adapter', join(FIX, 'adapters', 'gpt2-lora'), '--repo', 'me/merged',
      '--base-model', 'openai-community/gpt2', '--max-shard-size', '100KB', '--backend', 'cpu', '--endpoint', hub.url, '--token', TOKEN,
    ]);
    expect(code).toBe(0);
    const config = (await (await readBack('me/merged', 'config.json')).json()) as { architectures: string[] };
    expect(config.architectures).toEqual(['GPT2LMHeadModel']);
    expect((await readBack('me/merged', 'generation_config.json')).status).toBe(200);
    const index = (await (await readBack('me/merged', 'model.safetensors.index.json')).json()) as { weight_map: Record<string, string> };
    const shards = [...new Set(Object.values(index.weight_map))];
    expect(shards.length).toBeGreaterThan(1);
    // Every uploaded weight equals PEFT's merged model (merge_and_unload, saved by transformers).
    const want = fixtureTensors('adapters', 'gpt2-lora', 'merged.safetensors');
    let compared = 0;
    for (const s of shards) {
      const path = join(tmp, s);
      writeFileSync(path, Buffer.from(await (await readBack('me/merged', s)).arrayBuffer()));
      for (const [k, t] of readSafetensorsFile(path).tensors) {
        const w = want.get(k);
        if (!w) continue;
        const a = t.data as Float32Array;
        const b = w.data as Float32Array;
        let d = 0;
        for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
        expect(d, k).toBeLessThan(1e-6);
        compared++;
      }
    }
    expect(compared).toBe(want.size);
    const card = await (await readBack('me/merged', 'README.md')).text();
    expect(card).toContain('base_model: "openai-community/gpt2"');
    expect(card).toContain('library_name: transformers');
    expect(card).toContain('- "merged"');
    expect(card).toMatch(/with a PEFT LoRA adapter .* merged into its weights/);
    expect(card).toContain('AutoModelForCausalLM.from_pretrained("me/merged")');
    // No adapter files in a merged repo.
    expect((await readBack('me/merged', 'adapter_config.json')).status).toBe(404);
  });

  it('--merged without --model, and --model without --merged, say what to give', async () => {
    const adapter = join(FIX, 'adapters', 'gpt2-lora');
    expect(await main(['push', '--merged', '--adapter', adapter, '--repo', 'me/m2', '--endpoint', hub.url, '--token', TOKEN])).not.toBe(0);
    expect(await main(['push', '--model', 'x', '--adapter', adapter, '--repo', 'me/m2', '--endpoint', hub.url, '--token', TOKEN])).not.toBe(0);
    expect(readFileSync(join(adapter, 'adapter_config.json'), 'utf8')).toContain('LORA');
  });
});
