import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bert } from '../src/engine/models/bert';
import { gpt2 } from '../src/engine/models/gpt2';
import { moduleRole } from '../src/engine/models/spec';
import type { ModuleInfo, ModuleRole } from '../src/engine/models/types';
import { resolveLoraTargets } from '../src/engine/peft/targets';
import { peftDefaultsOf } from './helpers';
import {
  formatLayers, leafGroups, parseLayers, parseList, selectionInLayers, textForSelection, textToSpec, withRole,
  type TargetText,
} from '../src/state/targets-text';

const modules = JSON.parse(readFileSync('test/fixtures/models/gpt2-tiny/named_modules.json', 'utf8')) as ModuleInfo[];
const blank: TargetText = { mode: 'list', target: '', exclude: '', excludeRegex: false, layers: '', layersPattern: '' };

/** What PEFT's matcher selects for a text. */
function matched(t: TargetText): string[] {
  const { spec } = textToSpec(t);
  return resolveLoraTargets(modules, spec, { task: 'CAUSAL_LM', heads: { outputEmbedding: 'lm_head' }, defaults: peftDefaultsOf('gpt2') }).matched;
}

describe('text fields', () => {
  it('parses lists in comma, space or Python syntax', () => {
    expect(parseList("['c_attn', \"attn.c_proj\"]")).toEqual(['c_attn', 'attn.c_proj']);
    expect(parseList('c_attn c_fc,')).toEqual(['c_attn', 'c_fc']);
  });

  it('parses and formats layer ranges', () => {
    expect(parseLayers('0-3, 5')).toEqual([0, 1, 2, 3, 5]);
    expect(parseLayers('')).toBeNull();
    expect(() => parseLayers('1-x')).toThrow(/"1-x"/);
    expect(formatLayers([5, 0, 1, 2, 3])).toBe('0-3, 5');
    expect(formatLayers([0, 1])).toBe('0, 1');
  });

  it('reports a bad layers field instead of throwing', () => {
    expect(textToSpec({ ...blank, target: 'c_attn', layers: 'two' }).error).toMatch(/"two"/);
  });
});

describe('tree selection -> PEFT text (round trip through PEFT matching)', () => {
  const cases: [string, string[], Partial<TargetText>][] = [
    ['every c_attn', ['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn'], { target: 'c_attn', layers: '' }],
    ['attention c_proj only', ['transformer.h.0.attn.c_proj', 'transformer.h.1.attn.c_proj'], { target: 'attn.c_proj', layers: '' }],
    ['one module in one layer', ['transformer.h.1.mlp.c_fc'], { target: 'c_fc', layers: '1' }],
    ['two kinds in layer 0', ['transformer.h.0.attn.c_attn', 'transformer.h.0.mlp.c_fc'], { target: 'c_attn, c_fc', layers: '0' }],
    ['not a product', ['transformer.h.0.attn.c_attn', 'transformer.h.1.mlp.c_fc'], { target: '0.attn.c_attn, 1.mlp.c_fc', layers: '' }],
  ];
  for (const [name, want, text] of cases) {
    it(name, () => {
      const t = textForSelection(want, modules, blank);
      expect(t).toMatchObject(text);
      expect(matched(t)).toEqual([...want].sort());
    });
  }

  it('an empty selection is an empty list', () => {
    expect(textForSelection([], modules, { ...blank, target: 'c_attn' }).target).toBe('');
  });
});

describe('quick picks', () => {
  it('groups targetable leaves by name', () => {
    expect(leafGroups(modules).map((g) => [g.leaf, g.names.length])).toEqual([['c_attn', 2], ['c_proj', 4], ['c_fc', 2], ['lm_head', 1]]);
  });

  it('picks modules by the role their architecture file gives them', () => {
    const rolesOf = (spec: typeof gpt2 | typeof bert, names: string[]) =>
      Object.fromEntries(names.flatMap((n) => (moduleRole(spec, n) ? [[n, moduleRole(spec, n)!]] : []))) as Record<string, ModuleRole>;
    const g = ['transformer.h.0.attn.c_attn', 'transformer.h.0.attn.c_proj', 'transformer.h.0.mlp.c_fc', 'transformer.h.0.mlp.c_proj', 'lm_head'];
    expect(withRole(g, rolesOf(gpt2, g), 'attention')).toEqual(g.slice(0, 2));
    expect(withRole(g, rolesOf(gpt2, g), 'mlp')).toEqual(g.slice(2, 4));
    expect(withRole(g, rolesOf(gpt2, g), 'head')).toEqual(['lm_head']);
    const b = ['bert.encoder.layer.0.attention.self.query', 'bert.encoder.layer.0.attention.output.dense',
      'bert.encoder.layer.0.intermediate.dense', 'bert.encoder.layer.0.output.dense', 'bert.pooler.dense', 'classifier'];
    expect(withRole(b, rolesOf(bert, b), 'attention')).toEqual(b.slice(0, 2));
    expect(withRole(b, rolesOf(bert, b), 'mlp')).toEqual(b.slice(2, 4));
    expect(withRole(b, rolesOf(bert, b), 'head')).toEqual(b.slice(4));
  });

  it('restricts a selection to a layer range', () => {
    expect(selectionInLayers(['transformer.h.0.attn.c_attn'], modules, 1, 1)).toEqual(['transformer.h.1.attn.c_attn']);
  });
});
