/**
 * Training presets: the table per task and method, the studio's project store applying one (every field stays
 * editable, changed fields show as custom, a method switch keeps the preset's rate for the new method) and
 * `cli train --preset` filling the flags that were not given.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { moduleRoles, moduleTree } from '../src/engine/models';
import type { TaskType } from '../src/engine/models/types';
import { resolveLoraTargets } from '../src/engine/peft/targets';
import { presetFor, presetRoleSelection } from '../src/engine/train/presets';
import { DEFAULT_ARGS, DEFAULT_TARGET_TEXT, presetCustomFields, projectActions as P, useProject } from '../src/state/project';
import type { MethodInfo, TreeInfo } from '../src/worker/protocol';
import { FIX, peftDefaultsOf } from './helpers';

/** The tree the worker sends for a config (modules and their roles). */
function treeOf(dir: string, task: TaskType): TreeInfo {
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const modules = moduleTree(config, task);
  return { task, modules, totalParams: 0, tied: {}, roles: moduleRoles(config, task, modules) };
}

const methods = [
  { peftType: 'LORA', label: 'LoRA', learningRate: 2e-4, prompt: false, schema: [] },
  { peftType: 'PROMPT_TUNING', label: 'Prompt tuning', learningRate: 3e-2, prompt: true, schema: [] },
] as unknown as MethodInfo[];

describe('presets', () => {
  beforeEach(() => {
    useProject.setState({ methods, method: 'LORA', task: 'SEQ_CLS', args: DEFAULT_ARGS, limitBy: 'epochs', lrTouched: true, preset: null, lrFromMethod: null, targetText: DEFAULT_TARGET_TEXT });
  });

  it('per task: classification and language modelling rows; prompt methods keep their own rate and no targets', () => {
    const cls = presetFor('quick', 'SEQ_CLS', 'LORA', 2e-4);
    expect(cls.args).toMatchObject({ learningRate: 3e-3, maxSteps: 500, maxLength: 64, scheduler: 'cosine' });
    expect(cls.targets).toBe('all-linear');
    expect(cls.measured).toMatch(/91%/);
    expect(presetFor('quick', 'CAUSAL_LM', 'LORA', 2e-4).args.learningRate).toBe(5e-3);
    const pt = presetFor('quick', 'CAUSAL_LM', 'PROMPT_TUNING', 3e-2);
    expect(pt.args.learningRate).toBe(3e-2);
    expect(pt.targets).toBeNull();
    expect(pt.measured).toBeNull();
  });

  it('applying sets the fields and all-linear targets; a changed field is custom until it is back', () => {
    P.applyPreset('quick');
    const s = useProject.getState();
    expect(s.limitBy).toBe('maxSteps');
    expect(s.args).toMatchObject({ learningRate: 3e-3, maxSteps: 500, batchSize: 8, maxLength: 64, warmupSteps: 10, evalSteps: 100, scheduler: 'cosine' });
    expect(s.args.seed).toBe(DEFAULT_ARGS.seed);
    expect(s.targetText.mode).toBe('all-linear');
    expect(s.preset).toMatchObject({ id: 'quick', task: 'SEQ_CLS', method: 'LORA' });
    expect(presetCustomFields(useProject.getState())).toEqual([]);
    P.updateArgs({ learningRate: 1e-3, evalSteps: 10 });
    expect(presetCustomFields(useProject.getState())).toEqual(['learningRate', 'evalSteps']);
    P.updateArgs({ learningRate: 3e-3 });
    P.setTargetText({ mode: 'list', target: 'c_attn' });
    P.setLimitBy('epochs');
    expect(presetCustomFields(useProject.getState())).toEqual(['maxSteps', 'evalSteps', 'targets']);
    P.resetSettings();
    expect(useProject.getState().preset).toBeNull();
  });

  it('a method switch after a preset gives the new method its preset rate, and says it changed', () => {
    P.applyPreset('quick');
    P.setMethod('PROMPT_TUNING');
    let s = useProject.getState();
    expect(s.args.learningRate).toBe(3e-2);
    expect(s.preset?.method).toBe('PROMPT_TUNING');
    expect(s.lrFromMethod).toEqual({ method: 'PROMPT_TUNING', learningRate: 3e-2 });
    P.updateArgs({ learningRate: 0.01 });
    s = useProject.getState();
    expect(s.lrFromMethod).toBeNull();
    P.setMethod('LORA');
    expect(useProject.getState().args.learningRate).toBe(0.01);
  });

  it('TOKEN_CLS targets the attention and MLP modules of any architecture, never the classifier PEFT trains in full', () => {
    const t = presetFor('quick', 'TOKEN_CLS', 'LORA', 2e-4).targets;
    expect(t).toEqual({ roles: ['attention', 'mlp'] });
    const gpt2 = treeOf('public/models/sotu-gpt2', 'TOKEN_CLS');
    useProject.setState({ task: 'TOKEN_CLS', tree: gpt2 });
    P.applyPreset('quick');
    expect(useProject.getState().targetText).toMatchObject({ mode: 'list', target: 'c_attn, c_fc, c_proj' });
    expect(presetCustomFields(useProject.getState())).toEqual([]);
    P.setTargetText({ mode: 'list', target: 'c_attn' });
    expect(presetCustomFields(useProject.getState())).toEqual(['targets']);
    // BERT: the same roles give query, key, value and the dense layers, and PEFT's rules match exactly those.
    const bert = treeOf(join(FIX, 'models', 'bert-tiny-tokcls'), 'TOKEN_CLS');
    const chosen = presetRoleSelection(t as { roles: ['attention', 'mlp'] }, bert.roles);
    expect(chosen.some((n) => n.endsWith('.query')) && chosen.some((n) => n.endsWith('intermediate.dense'))).toBe(true);
    expect(chosen.some((n) => n.startsWith('classifier'))).toBe(false);
    useProject.setState({ tree: bert, targetText: DEFAULT_TARGET_TEXT });
    P.applyPreset('quick');
    const text = useProject.getState().targetText.target;
    const r = resolveLoraTargets(bert.modules, { targetModules: text.split(',').map((x) => x.trim()) }, { task: 'TOKEN_CLS', heads: {}, defaults: peftDefaultsOf('bert') });
    expect([...r.matched].sort()).toEqual(chosen);
    useProject.setState({ tree: null });
  });

  it('without a preset, a method switch shows the rate it set', () => {
    useProject.setState({ lrTouched: false });
    P.setMethod('PROMPT_TUNING');
    expect(useProject.getState().lrFromMethod).toEqual({ method: 'PROMPT_TUNING', learningRate: 3e-2 });
  });
});
