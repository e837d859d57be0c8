/**
 * The Targets panel's PEFT text <-> target spec, and tree clicks -> PEFT text.
 *
 * The text fields are the single source of truth: the worker resolves them with PEFT's matcher and the tree
 * shows that result. A click in the tree computes the wanted set of modules and writes the shortest PEFT
 * spelling of it back into the text: leaf-name suffixes (PEFT's own minimal-suffix search), plus
 * layers_to_transform when the set is "these modules in these layers".
 */
import type { ModuleInfo, ModuleRole } from '../engine/models/types';
import { describeLayerIndex, findMinimalTargetModules } from '../engine/peft/targets';
import type { TargetSpec } from '../worker/protocol';

export type TargetMode = 'list' | 'regex' | 'all-linear';

/** The editable form of a target spec. */
export interface TargetText {
  mode: TargetMode;
  /** List mode: comma-separated names; regex mode: the pattern. */
  target: string;
  exclude: string;
  excludeRegex: boolean;
  /** e.g. "0-3, 5"; empty = every layer. */
  layers: string;
  layersPattern: string;
}

export const TARGETABLE_TYPES = new Set(['Linear', 'Conv1D']);

/** "c_attn, 'attn.c_proj'" or "['a', 'b']" -> ["c_attn", "attn.c_proj"]. */
export function parseList(text: string): string[] {
  return text
    .replace(/^\s*[[{(]|[\]})]\s*$/g, '')
    .split(/[,\s]+/)
    .map((s) => s.replace(/^['"]|['"]$/g, '').trim())
    .filter(Boolean);
}

export function formatList(list: string[]): string {
  return list.join(', ');
}

/** "0-3, 5" -> [0, 1, 2, 3, 5]; throws a message naming the bad part. */
export function parseLayers(text: string): number[] | null {
  const t = text.trim().replace(/^\[|\]$/g, '');
  if (!t) return null;
  const out = new Set<number>();
  for (const part of t.split(/[,\s]+/).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`layers_to_transform: "${part}" is not a layer number or a range like 0-3`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new Error(`layers_to_transform: the range "${part}" runs backwards`);
    for (let i = a; i <= b; i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}

/** [0, 1, 2, 3, 5] -> "0-3, 5". */
export function formatLayers(layers: number[] | null): string {
  if (!layers || !layers.length) return '';
  const s = [...new Set(layers)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    parts.push(j - i >= 2 ? `${s[i]}-${s[j]}` : j === i ? `${s[i]}` : `${s[i]}, ${s[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

/** The text as a PEFT spec, or an error message for text that cannot be a spec. */
export function textToSpec(t: TargetText): { spec: TargetSpec; error?: string } {
  const base: TargetSpec = {
    targetModules: t.mode === 'all-linear' ? 'all-linear' : t.mode === 'regex' ? t.target : parseList(t.target),
    excludeModules: t.exclude.trim() ? (t.excludeRegex ? t.exclude.trim() : parseList(t.exclude)) : null,
    layersToTransform: null,
    layersPattern: t.layersPattern.trim() || null,
  };
  try {
    base.layersToTransform = parseLayers(t.layers);
  } catch (e) {
    return { spec: base, error: (e as Error).message };
  }
  return { spec: base };
}

/** Python-style rendering of the spec, as it would appear in LoraConfig(...). */
export function specAsPython(s: TargetSpec): string {
  const py = (v: unknown): string =>
    v === null ? 'None' : Array.isArray(v) ? `[${v.map(py).join(', ')}]` : typeof v === 'string' ? JSON.stringify(v) : String(v);
  const parts = [`target_modules=${py(s.targetModules)}`];
  if (s.excludeModules !== null) parts.push(`exclude_modules=${py(s.excludeModules)}`);
  if (s.layersToTransform !== null) parts.push(`layers_to_transform=${py(s.layersToTransform)}`);
  if (s.layersPattern !== null) parts.push(`layers_pattern=${py(s.layersPattern)}`);
  return parts.join(',\n');
}

function nameOrSuffix(name: string, list: string[]): boolean {
  return list.includes(name) || list.some((k) => name.endsWith(`.${k}`));
}

/** Name relative to its layer ("transformer.h.3.attn.c_attn" -> "attn.c_attn"), or null outside the layers. */
function layerRel(name: string): { layer: number; rel: string } | null {
  const layer = describeLayerIndex(name);
  if (layer === null) return null;
  const m = new RegExp(`^.*?\\.${layer}\\.(.+)$`).exec(name);
  return m ? { layer, rel: m[1] } : null;
}

/**
 * The shortest PEFT text that selects exactly `selected` (a set of targetable module names).
 * Keeps the exclude text empty: the selection is explicit.
 */
export function textForSelection(selected: Iterable<string>, modules: ModuleInfo[], prev: TargetText): TargetText {
  const want = [...new Set(selected)].sort();
  const names = modules.map((m) => m.name).filter(Boolean);
  const next: TargetText = { ...prev, mode: 'list', exclude: '', excludeRegex: false, layers: '', layersPattern: '' };
  if (!want.length) return { ...next, target: '' };
  const wantSet = new Set(want);

  // "these modules, in these layers": a product of relative names and layer indices, not every layer.
  const rels = want.map(layerRel);
  if (rels.every((r) => r !== null)) {
    const relSet = new Set(rels.map((r) => r!.rel));
    const layerSet = new Set(rels.map((r) => r!.layer));
    const allLayers = new Set(names.map(layerRel).filter((r) => r !== null).map((r) => r!.layer));
    const product = names.filter((n) => {
      const r = layerRel(n);
      return r !== null && relSet.has(r.rel) && layerSet.has(r.layer) && TARGETABLE_TYPES.has(modules.find((m) => m.name === n)!.type);
    });
    if (layerSet.size < allLayers.size && product.length === want.length && product.every((n) => wantSet.has(n))) {
      // Suffixes chosen among all modules of the chosen layers (PEFT drops everything else by layer index).
      const inLayers = names.filter((n) => {
        const r = layerRel(n);
        return r !== null && layerSet.has(r.layer);
      });
      const suffixes = findMinimalTargetModules(want, inLayers.filter((n) => !wantSet.has(n)));
      const ok = inLayers.filter((n) => nameOrSuffix(n, suffixes)).every((n) => wantSet.has(n));
      if (ok && suffixes.every((s) => !want.includes(s))) {
        return { ...next, target: formatList(suffixes.sort()), layers: formatLayers([...layerSet]) };
      }
    }
  }
  const suffixes = findMinimalTargetModules(want, names.filter((n) => !wantSet.has(n)));
  return { ...next, target: formatList(suffixes.sort()) };
}

/** Targetable leaf names grouped by their last segment, for the "all c_attn" quick picks. */
export function leafGroups(modules: ModuleInfo[], exclude: string[] = []): { leaf: string; names: string[] }[] {
  const groups = new Map<string, string[]>();
  for (const m of modules) {
    if (!TARGETABLE_TYPES.has(m.type) || exclude.includes(m.name)) continue;
    const leaf = m.name.split('.').pop()!;
    groups.set(leaf, [...(groups.get(leaf) ?? []), m.name]);
  }
  return [...groups].map(([leaf, names]) => ({ leaf, names }));
}

/** The names in `names` whose architecture file gives them `role` (TreeInfo.roles): "attention only", "MLP only". */
export function withRole(names: string[], roles: Record<string, ModuleRole>, role: ModuleRole): string[] {
  return names.filter((n) => roles[n] === role);
}

/** The current selection restricted to layers lo..hi (all its module kinds, in each of those layers). */
export function selectionInLayers(selected: string[], modules: ModuleInfo[], lo: number, hi: number): string[] {
  const rels = new Set(selected.map(layerRel).filter((r) => r !== null).map((r) => r!.rel));
  return modules
    .filter((m) => TARGETABLE_TYPES.has(m.type))
    .map((m) => m.name)
    .filter((n) => {
      const r = layerRel(n);
      return r !== null && rels.has(r.rel) && r.layer >= lo && r.layer <= hi;
    });
}

/** Layer indices present in the model (PEFT's reading of module names). */
export function layerIndices(modules: ModuleInfo[]): number[] {
  return [...new Set(modules.map((m) => layerRel(m.name)?.layer).filter((l): l is number => l !== undefined))].sort((a, b) => a - b);
}

/**
 * A sentence a person can act on for a targets error from the worker; PEFT's own text stays the detail.
 * Codes other than TARGETS_NOT_FOUND are already written for people and come back as they are.
 */
export function explainTargetsError(err: { code: string; message: string }, t: TargetText): { summary: string; detail?: string } {
  if (err.code !== 'TARGETS_NOT_FOUND') return { summary: err.message };
  const picks = 'Tick modules in the tree below or use a quick pick';
  const layers = t.mode === 'list' && t.layers.trim() ? ` Also check that layers_to_transform (${t.layers.trim()}) names layers this model has.` : '';
  let summary: string;
  if (/^All modules were excluded/.test(err.message)) {
    summary = `exclude_modules removes every module that target_modules selects, so nothing would be trained. Shorten exclude_modules, or ${picks.toLowerCase()}.`;
  } else if (/^No modules were targeted/.test(err.message)) {
    summary = `No module is left to adapt: the target names match nothing outside exclude_modules and modules_to_save. ${picks}, or check the spelling of the names.`;
  } else if (t.mode === 'all-linear' || !t.target.trim()) {
    summary = `No modules are targeted yet. ${picks} (for example "all c_attn").`;
  } else if (t.mode === 'regex') {
    summary = `The regex "${t.target.trim()}" matches no module name. It must match a whole name, e.g. .*\\.attn\\.c_attn. Check the pattern, or ${picks.toLowerCase()}.`;
  } else {
    summary = `None of the names (${parseList(t.target).join(', ')}) is a module of this model. Check their spelling against the tree (a name matches the end of a module's name, e.g. c_attn), or ${picks.toLowerCase()}.`;
  }
  return { summary: summary + layers, detail: err.message };
}
