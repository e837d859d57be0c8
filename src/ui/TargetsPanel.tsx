/**
 * Targets: the PEFT text (target_modules list or regex, exclude_modules, layers_to_transform), quick picks,
 * the module tree showing exactly what that text matches, and PEFT's trainable-parameter line.
 */
import { useMemo, useState } from 'react';
import { methodInfoOf, projectActions as P, useProject } from '../state/project';
import { useRun } from '../state/run';
import { explainTargetsError, layerIndices, leafGroups, selectionInLayers, specAsPython, textToSpec, withRole, type TargetMode } from '../state/targets-text';
import { Check, ErrorNote, Panel, Segmented, TextField } from './controls';
import { ModuleTree } from './ModuleTree';

/** PEFT's config class for a peft_type, as the Python snippet names it. */
function configClass(peftType?: string): string {
  const names: Record<string, string> = { LORA: 'LoraConfig', IA3: 'IA3Config', ADALORA: 'AdaLoraConfig' };
  return names[peftType ?? 'LORA'] ?? 'LoraConfig';
}

export function TargetsPanel() {
  const tree = useProject((s) => s.tree);
  const text = useProject((s) => s.targetText);
  const targets = useProject((s) => s.targets);
  const info = useProject((s) => methodInfoOf(s));
  const running = useRun((s) => s.state !== 'idle');
  const result = targets.result;
  const matched = result?.matched ?? [];
  const heads = result?.modulesToSave ?? [];
  // Prompt methods have virtual tokens, not target modules.
  const adapter = !info?.prompt;
  const locked = running || !adapter;

  // SEQ_CLS heads are modules_to_save (trained in full), never LoRA targets.
  const groups = useMemo(() => (tree ? leafGroups(tree.modules, tree.task === 'SEQ_CLS' ? ['score', 'classifier', ...heads] : heads) : []), [tree, heads]);
  const layers = useMemo(() => (tree ? layerIndices(tree.modules) : []), [tree]);
  const [from, setFrom] = useState('0');
  const [to, setTo] = useState('');
  const spec = textToSpec(text).spec;
  const linear = groups.flatMap((g) => g.names);

  return (
    <Panel
      title="Targets"
      id="targets"
      aside={
        <code className="trainable" data-testid="trainable-line" aria-live="polite">
          {result?.line || '…'}
        </code>
      }
    >
      {!tree && <p className="muted">Load a model to see its modules.</p>}
      {tree && (
        <>
          {!adapter && (
            <p className="hint" data-testid="virtual-tokens">
              {info?.label} trains {result?.virtualTokens ?? 'its'} virtual tokens prepended to every input; no modules are targeted.
            </p>
          )}
          <fieldset className="peft-text" disabled={locked}>
            <div className="row">
              <span className="label">target_modules</span>
              <Segmented<TargetMode>
                label="target_modules kind"
                value={text.mode}
                options={[
                  { value: 'list', label: 'List' },
                  { value: 'regex', label: 'Regex' },
                  { value: 'all-linear', label: 'all-linear' },
                ]}
                onChange={(mode) =>
                  P.setTargetText({
                    mode,
                    target: mode === 'regex' && text.mode === 'list' ? (text.target ? `.*\\.(${text.target.split(/[,\s]+/).filter(Boolean).join('|')})` : '') : mode === 'list' && text.mode !== 'list' ? '' : text.target,
                    ...(mode !== 'list' ? { layers: '', layersPattern: '' } : {}),
                  })
                }
              />
            </div>
            {text.mode !== 'all-linear' && (
              <TextField
                label={text.mode === 'list' ? 'names or suffixes, comma-separated' : 'regex (full match on the module name)'}
                value={text.target}
                mono
                wide
                testId="target-modules-input"
                placeholder={text.mode === 'list' ? 'c_attn, c_proj' : '.*\\.attn\\.c_attn'}
                onChange={(target) => P.setTargetText({ target })}
              />
            )}
            <div className="grid2">
              <TextField label="exclude_modules" value={text.exclude} mono placeholder="(none)" onChange={(exclude) => P.setTargetText({ exclude })} testId="exclude-input" />
              <Check label="exclude is a regex" checked={text.excludeRegex} onChange={(excludeRegex) => P.setTargetText({ excludeRegex })} />
              <TextField
                label="layers_to_transform"
                value={text.layers}
                mono
                placeholder="all layers"
                disabled={text.mode !== 'list'}
                hint="Layer numbers or ranges, e.g. 0-3, 5 (list mode only, as in PEFT)"
                onChange={(layers) => P.setTargetText({ layers })}
                testId="layers-input"
              />
              <TextField
                label="layers_pattern"
                value={text.layersPattern}
                mono
                placeholder="auto"
                disabled={text.mode !== 'list'}
                onChange={(layersPattern) => P.setTargetText({ layersPattern })}
              />
            </div>
            <div className="quick" aria-label="Quick picks">
              <span className="label">Quick picks</span>
              {groups.map((g) => {
                const on = g.names.every((n) => matched.includes(n));
                return (
                  <button
                    key={g.leaf}
                    type="button"
                    className={`chip ${on ? 'on' : ''}`}
                    title={`${on ? 'Remove' : 'Add'} every ${g.leaf}`}
                    onClick={() => P.toggleTargets(g.names, !on)}
                  >
                    all {g.leaf} <span className="muted">×{g.names.length}</span>
                  </button>
                );
              })}
              <button type="button" className="chip" onClick={() => P.selectTargets(withRole(linear, tree.roles, 'attention'))}>
                attention only
              </button>
              <button type="button" className="chip" onClick={() => P.selectTargets(withRole(linear, tree.roles, 'mlp'))}>
                MLP only
              </button>
              <button type="button" className="chip" onClick={() => P.setTargetText({ mode: 'all-linear', target: '', layers: '', layersPattern: '', exclude: '' })}>
                all-linear
              </button>
              <button type="button" className="chip" onClick={() => P.selectTargets([])}>
                none
              </button>
            </div>
            {layers.length > 1 && (
              <div className="row layer-range">
                <span className="label">Only layers</span>
                <input aria-label="first layer" className="tiny" value={from} onChange={(e) => setFrom(e.target.value)} />
                <span>to</span>
                <input aria-label="last layer" className="tiny" value={to} placeholder={String(layers[layers.length - 1])} onChange={(e) => setTo(e.target.value)} />
                <button
                  type="button"
                  onClick={() => {
                    const lo = Number(from) || 0;
                    const hi = to.trim() === '' ? layers[layers.length - 1] : Number(to);
                    P.selectTargets(selectionInLayers(matched, tree.modules, lo, hi));
                  }}
                >
                  Apply
                </button>
              </div>
            )}
          </fieldset>
          {adapter && <pre className="python" data-testid="peft-python">{`${configClass(info?.peftType)}(\n  ${specAsPython(spec).replace(/\n/g, '\n  ')},\n)`}</pre>}
          {result?.error && <TargetsError error={result.error} text={text} />}
          <ModuleTree modules={tree.modules} tied={tree.tied} matched={adapter ? matched : []} saved={heads} roles={result?.roles} badge={info?.label} disabled={locked} onToggle={P.toggleTargets} />
        </>
      )}
    </Panel>
  );
}

/** The targets error in words a person can act on, with PEFT's exact text one click away. */
function TargetsError(p: { error: { code: string; message: string }; text: Parameters<typeof explainTargetsError>[1] }) {
  const e = explainTargetsError(p.error, p.text);
  return (
    <ErrorNote testId="targets-error">
      <span data-testid="targets-error-summary">{e.summary}</span>
      {e.detail && (
        <details className="peft-detail">
          <summary>PEFT says</summary>
          <code data-testid="targets-error-peft">{e.detail}</code>
        </details>
      )}
    </ErrorNote>
  );
}
