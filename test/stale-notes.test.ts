/**
 * The previous-run notes of the Export panel, Push to the Hub and the playground: the same staleNote() as the
 * Live panel's, about the checkpoint's own run (a checkpoint keeps the task, method and model it was trained with).
 */
import { describe, expect, it } from 'vitest';
import { STALE_ADAPTER, STALE_PLAYGROUND, STALE_PUSH, staleNote } from '../src/state/feedback';
import { runActions, useRun } from '../src/state/run';

const files = { 'adapter_model.safetensors': new ArrayBuffer(8), 'adapter_config.json': '{"peft_type": "LORA"}' };
const gpt2 = { task: 'CAUSAL_LM' as const, method: 'LORA', model: 'sotu-gpt2' };

describe('previous-run notes', () => {
  it('name the run the adapter came from and what changed, for each panel', () => {
    expect(staleNote(gpt2, gpt2, STALE_ADAPTER)).toBeNull();
    expect(staleNote(null, gpt2, STALE_ADAPTER)).toBeNull();
    expect(staleNote(gpt2, { ...gpt2, method: 'IA3' }, STALE_ADAPTER)).toBe(
      'This adapter is from the previous run (CAUSAL_LM · LORA · sotu-gpt2); the method changed since. It loads on the model it was trained on; start training for an adapter of the current settings.',
    );
    expect(staleNote(gpt2, { ...gpt2, task: 'SEQ_CLS', model: 'bert' }, STALE_PLAYGROUND)).toMatch(
      /^The adapter tried here, and its outputs below, are from the previous run \(CAUSAL_LM · LORA · sotu-gpt2\); the task and model changed since\./,
    );
    expect(staleNote(gpt2, { ...gpt2, model: 'other' }, STALE_PUSH)).toMatch(/^The adapter this pushes is from the previous run .*; the model changed since\./);
    // The Live panel's wording is unchanged.
    expect(staleNote(gpt2, { ...gpt2, task: 'SEQ_CLS' })).toMatch(/^These results are from the previous run/);
  });

  it('a checkpoint keeps the setup of the run that sent it, also once the next run has started', () => {
    runActions.starting('CAUSAL_LM', null, gpt2);
    runActions.onEvent({ type: 'state', runId: 1, state: 'running' });
    runActions.onEvent({ type: 'checkpoint', runId: 1, step: 3, files });
    expect(useRun.getState().checkpoint?.from).toEqual(gpt2);
    const ia3 = { ...gpt2, method: 'IA3' };
    runActions.starting('CAUSAL_LM', null, ia3);
    runActions.onEvent({ type: 'state', runId: 2, state: 'running' });
    // Until run 2 sends its own, the checkpoint on offer is run 1's, with run 1's setup.
    expect(useRun.getState().checkpoint?.from).toEqual(gpt2);
    runActions.onEvent({ type: 'checkpoint', runId: 2, step: 0, files });
    expect(useRun.getState().checkpoint?.from).toEqual(ia3);
  });
});
