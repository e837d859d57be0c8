import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ModuleInfo } from '../src/engine/models/types';
import { resolveLoraTargets } from '../src/engine/peft/targets';
import { EngineError } from '../src/engine/errors';
import { explainTargetsError, textToSpec, type TargetText } from '../src/state/targets-text';
import { peftDefaultsOf } from './helpers';

const modules = JSON.parse(readFileSync('test/fixtures/models/gpt2-tiny/named_modules.json', 'utf8')) as ModuleInfo[];
const blank: TargetText = { mode: 'list', target: '', exclude: '', excludeRegex: false, layers: '', layersPattern: '' };

/** The EngineError PEFT's matcher throws for a text. */
function errorOf(t: TargetText): EngineError {
  try {
    resolveLoraTargets(modules, textToSpec(t).spec, { task: 'CAUSAL_LM', heads: { outputEmbedding: 'lm_head' }, defaults: peftDefaultsOf('gpt2') });
  } catch (e) {
    if (e instanceof EngineError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

describe('targets that match nothing, explained', () => {
  it('an empty list asks for a tick or a quick pick and keeps PEFT\'s text as the detail', () => {
    const err = errorOf(blank);
    expect(err.code).toBe('TARGETS_NOT_FOUND');
    const e = explainTargetsError(err, blank);
    expect(e.summary).toBe('No modules are targeted yet. Tick modules in the tree below or use a quick pick (for example "all c_attn").');
    expect(e.detail).toBe('Target modules set() not found in the base model. Please check the target modules and try again.');
  });

  it('a misspelt name points at the spelling', () => {
    const t = { ...blank, target: 'c_atn' };
    const e = explainTargetsError(errorOf(t), t);
    expect(e.summary).toBe(
      "None of the names (c_atn) is a module of this model. Check their spelling against the tree (a name matches the end of a module's name, e.g. c_attn), or tick modules in the tree below or use a quick pick.",
    );
    expect(e.detail).toBe("Target modules {'c_atn'} not found in the base model. Please check the target modules and try again.");
  });

  it('a regex that matches nothing names the full-match rule; layers are mentioned when set', () => {
    const r = { ...blank, mode: 'regex' as const, target: 'attn' };
    expect(explainTargetsError(errorOf(r), r).summary).toBe(
      'The regex "attn" matches no module name. It must match a whole name, e.g. .*\\.attn\\.c_attn. Check the pattern, or tick modules in the tree below or use a quick pick.',
    );
    const l = { ...blank, target: 'c_attn', layers: '7' };
    const e = explainTargetsError(errorOf(l), l);
    expect(e.summary).toMatch(/Also check that layers_to_transform \(7\) names layers this model has\.$/);
    expect(e.detail).toContain("Note: You specified 'layers_to_transform': [7].");
  });

  it('exclusions: all modules excluded, or the targets only inside exclude_modules', () => {
    const some = { ...blank, target: 'c_attn', exclude: 'c_attn' };
    expect(explainTargetsError(errorOf(some), some).summary).toMatch(/^No module is left to adapt: the target names match nothing outside exclude_modules/);
    const t = { ...blank, target: 'c_attn', exclude: '.*', excludeRegex: true };
    const e = explainTargetsError(errorOf(t), t);
    expect(e.summary).toMatch(/^exclude_modules removes every module that target_modules selects/);
    expect(e.detail).toMatch(/^All modules were excluded/);
  });

  it('other errors pass through', () => {
    expect(explainTargetsError({ code: 'BAD_REGEX', message: 'The regex is invalid.' }, blank)).toEqual({ summary: 'The regex is invalid.' });
  });
});
