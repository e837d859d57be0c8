/**
 * The playground's streaming generation: the text after each token is a prefix of the final text, a stop request
 * ends the generation at once with what it has and leaves the model as it was, an end-of-turn id ends it like EOS,
 * and with a fixed seed streaming does not change the sampled text.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadAdapter } from '../src/engine/adapter/import';
import { useNodeBackend } from '../src/engine/io/node-backend';
import type { PeftModel } from '../src/engine/peft/model';
import { generate, generateIds } from '../src/engine/train/generate';
import { FIX, fixtureModel } from './helpers';

const PROMPT = [5, 17, 300, 42, 9, 123, 7];
const tok = { encode: (s: string) => s.split(' ').map(Number), decode: (ids: number[]) => ids.join(' '), eosTokenId: 999 };
let peft: PeftModel;

beforeAll(async () => {
  await useNodeBackend('cpu');
  const dir = join(FIX, 'adapters', 'gpt2-lora');
  peft = loadAdapter(fixtureModel('gpt2-tiny'), {
    config: readFileSync(join(dir, 'adapter_config.json'), 'utf8'),
    weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))),
  });
  return () => {
    peft.dispose();
    peft.base.dispose();
  };
});

describe('streaming generation', () => {
  it('streams one growing text per token, ending in the returned text; a fixed seed gives a fixed text, streamed or not', async () => {
    const o = { maxNewTokens: 12, temperature: 1, topK: 50, topP: 0.9, seed: 7 };
    const plain = await generate(peft, tok, '5 17 300', o);
    const seen: string[] = [];
    const streamed = await generate(peft, tok, '5 17 300', { ...o, onText: (t) => void seen.push(t) });
    expect(streamed).toBe(plain);
    expect(seen).toHaveLength(12);
    seen.forEach((t, i) => expect(t.split(' ')).toEqual(plain.split(' ').slice(0, i + 1)));
    expect(await generate(peft, tok, '5 17 300', { ...o, onText: async () => new Promise((r) => setTimeout(r, 0)) })).toBe(plain);
  });

  it('a stop request ends the generation with the tokens so far, frees its tensors, and the next generation is whole', async () => {
    const full = await generateIds(peft, PROMPT, { maxNewTokens: 10, temperature: 0 });
    const before = tf.memory().numTensors;
    let stop = false;
    const cut = await generateIds(peft, PROMPT, { maxNewTokens: 10, temperature: 0, shouldStop: () => stop, onToken: (ids) => void (stop = ids.length === 3) });
    expect(cut).toEqual(full.slice(0, 3));
    expect(tf.memory().numTensors).toBe(before);
    expect(await generateIds(peft, PROMPT, { maxNewTokens: 10, temperature: 0 })).toEqual(full);
  });

  it('an end-of-turn id in stopIds ends the generation before it, as EOS does', async () => {
    const full = await generateIds(peft, PROMPT, { maxNewTokens: 10, temperature: 0 });
    const endOfTurn = full[4];
    const cut = await generateIds(peft, PROMPT, { maxNewTokens: 10, temperature: 0, stopIds: [endOfTurn] });
    expect(cut).toEqual(full.slice(0, full.indexOf(endOfTurn)));
  });
});
