/**
 * named_modules() as a collapsible tree: type and parameter count per node, checkboxes on Linear / Conv1D
 * leaves (and on inner nodes, for every targetable leaf below). Checked = matched by the current PEFT text;
 * a click asks the project store to rewrite the text, and the tree follows the worker's new match.
 * Keyboard: the WAI-ARIA tree pattern (one tab stop, arrows, Home/End, type-ahead, Space toggles the target).
 */
import { memo, useEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import type { ModuleInfo } from '../engine/models/types';
import { TARGETABLE_TYPES } from '../state/targets-text';
import { compact, thousands } from './format';

interface Node {
  name: string;
  label: string;
  type: string;
  own: number;
  /** Parameters below and at this node, a tied weight counted only where it is stored. */
  total: number;
  /** The weight this node's parameter is tied to (e.g. lm_head -> transformer.wte.weight). */
  tiedTo?: string;
  depth: number;
  children: Node[];
  /** Targetable leaves at or below this node. */
  leaves: string[];
  parent: string | null;
  /** 1-based position among its siblings (aria-posinset) and their count (aria-setsize). */
  pos: number;
  setSize: number;
}

function buildTree(modules: ModuleInfo[], tied: Record<string, string>): Node | null {
  const byName = new Map<string, Node>();
  let root: Node | null = null;
  for (const m of modules) {
    let own = 0;
    let tiedTo: string | undefined;
    for (const [p, s] of Object.entries(m.params)) {
      const full = m.name ? `${m.name}.${p}` : p;
      if (full in tied) tiedTo = tied[full];
      else own += s.reduce((x, y) => x * y, 1);
    }
    const depth = m.name ? m.name.split('.').length : 0;
    const node: Node = { name: m.name, label: m.name.split('.').pop() || '(model)', type: m.type, own, total: own, tiedTo, depth, children: [], leaves: TARGETABLE_TYPES.has(m.type) ? [m.name] : [], parent: null, pos: 1, setSize: 1 };
    byName.set(m.name, node);
    if (!m.name) root = node;
    else {
      const parent = m.name.includes('.') ? m.name.slice(0, m.name.lastIndexOf('.')) : '';
      node.parent = parent;
      byName.get(parent)?.children.push(node);
    }
  }
  const sum = (n: Node) => {
    n.children.forEach((c, i) => {
      c.pos = i + 1;
      c.setSize = n.children.length;
    });
    for (const c of n.children) {
      sum(c);
      n.total += c.total;
      n.leaves.push(...c.leaves);
    }
  };
  if (root) sum(root);
  return root;
}

/** Expanded by default: the top levels and the first layer of each module list, so a layer's structure shows. */
function defaultExpanded(root: Node): Set<string> {
  const out = new Set<string>();
  const visit = (n: Node) => {
    if (n.depth <= 2 || n.type.endsWith('ModuleList') || /\.0(\.|$)/.test(n.name)) {
      out.add(n.name);
      for (const c of n.children) if (c.children.length) visit(c);
    }
  };
  visit(root);
  return out;
}

export function ModuleTree(props: {
  modules: ModuleInfo[];
  /** Tied parameter names (TreeInfo.tied): shown as "tied" and counted once. */
  tied?: Record<string, string>;
  matched: string[];
  saved: string[];
  /** Module -> how the method treats it (IA3: 'feedforward'), shown as a badge. */
  roles?: Record<string, string>;
  /** Badge of an adapted module (the method's name). */
  badge?: string;
  disabled: boolean;
  onToggle: (names: string[], on: boolean) => void;
}) {
  const root = useMemo(() => buildTree(props.modules, props.tied ?? {}), [props.modules, props.tied]);
  const [expanded, setExpanded] = useState<Set<string>>(() => (root ? defaultExpanded(root) : new Set()));
  useEffect(() => setExpanded(root ? defaultExpanded(root) : new Set()), [root]);
  const matched = useMemo(() => new Set(props.matched), [props.matched]);
  const saved = useMemo(() => new Set(props.saved), [props.saved]);
  // Roving tabindex: the one row in the tab order; moved by the keys, focused after a key moved it.
  const [focused, setFocused] = useState<string>('');
  const moved = useRef(false);
  const box = useRef<HTMLDivElement>(null);
  const typed = useRef({ text: '', at: 0 });
  useEffect(() => {
    if (!moved.current) return;
    moved.current = false;
    const el = box.current?.querySelector<HTMLElement>(`[data-module="${CSS.escape(focused)}"]`);
    el?.focus();
    el?.scrollIntoView({ block: 'nearest' });
  }, [focused]);
  if (!root) return null;

  const rows: Node[] = [];
  const walk = (n: Node) => {
    rows.push(n);
    if (expanded.has(n.name)) n.children.forEach(walk);
  };
  walk(root);

  const toggleOpen = (name: string) =>
    setExpanded((s) => {
      const next = new Set(s);
      if (next.has(name)) next.delete(name);
      else next.add(name);
      return next;
    });
  const byName = new Map(rows.map((n) => [n.name, n]));
  const current = byName.get(focused) ?? rows[0];
  const go = (n: Node | undefined) => {
    if (!n) return;
    moved.current = true;
    setFocused(n.name);
  };
  const onKey = (e: KeyboardEvent<HTMLDivElement>) => {
    // A checkbox or twisty focused by a click keeps its own keys.
    if ((e.target as HTMLElement).getAttribute('role') !== 'treeitem') return;
    const i = rows.indexOf(current);
    const open = expanded.has(current.name);
    const kids = current.children.length > 0;
    let handled = true;
    if (e.key === 'ArrowDown') go(rows[i + 1]);
    else if (e.key === 'ArrowUp') go(rows[i - 1]);
    else if (e.key === 'Home') go(rows[0]);
    else if (e.key === 'End') go(rows[rows.length - 1]);
    else if (e.key === 'ArrowRight') {
      if (kids && !open) toggleOpen(current.name);
      else if (kids) go(current.children[0]);
    } else if (e.key === 'ArrowLeft') {
      if (kids && open) toggleOpen(current.name);
      else if (current.parent !== null) go(byName.get(current.parent));
    } else if (e.key === ' ' || e.key === 'Enter') {
      if (e.key === ' ' && current.leaves.length && !props.disabled) props.onToggle(current.leaves, checkState(current.leaves, matched) !== 'on');
      else if (e.key === 'Enter' && kids) toggleOpen(current.name);
    } else if (e.key.length === 1 && !e.ctrlKey && !e.metaKey && !e.altKey) {
      // Type-ahead: letters typed within half a second build one prefix; the next row whose name starts with it.
      const now = Date.now();
      typed.current = { text: (now - typed.current.at < 500 ? typed.current.text : '') + e.key.toLowerCase(), at: now };
      const q = typed.current.text;
      const order = [...rows.slice(i + (q.length === 1 ? 1 : 0)), ...rows.slice(0, i + (q.length === 1 ? 1 : 0))];
      go(order.find((n) => n.label.toLowerCase().startsWith(q)));
    } else handled = false;
    if (handled) e.preventDefault();
  };

  const all = () => {
    const out = new Set<string>();
    const v = (n: Node) => (n.children.length ? (out.add(n.name), n.children.forEach(v)) : undefined);
    v(root);
    setExpanded(out);
  };

  return (
    <div className="tree" data-testid="module-tree" data-matched={props.matched.join(' ')}>
      <div className="tree-tools">
        <button type="button" className="link" onClick={all}>
          Expand all
        </button>
        <button type="button" className="link" onClick={() => setExpanded(new Set([root.name]))}>
          Collapse all
        </button>
        <span className="muted">
          {thousands(matched.size)} of {thousands(root.leaves.length)} Linear/Conv1D modules targeted
        </span>
      </div>
      <div className="tree-rows" role="tree" aria-label="Model modules" aria-multiselectable="true" ref={box} onKeyDown={onKey} data-testid="module-tree-rows">
        {rows.map((n) => (
          <Row
            key={n.name || '(root)'}
            node={n}
            focusable={n === current}
            onFocus={setFocused}
            open={expanded.has(n.name)}
            state={n.leaves.length ? checkState(n.leaves, matched) : null}
            isMatched={matched.has(n.name)}
            isSaved={saved.has(n.name)}
            role={props.roles?.[n.name]}
            badge={props.badge ?? 'LoRA'}
            disabled={props.disabled}
            onOpen={toggleOpen}
            onToggle={props.onToggle}
          />
        ))}
      </div>
    </div>
  );
}

function checkState(leaves: string[], matched: Set<string>): 'on' | 'off' | 'some' {
  const k = leaves.filter((l) => matched.has(l)).length;
  return k === 0 ? 'off' : k === leaves.length ? 'on' : 'some';
}

const Row = memo(function Row(p: {
  node: Node;
  focusable: boolean;
  onFocus: (name: string) => void;
  open: boolean;
  state: 'on' | 'off' | 'some' | null;
  isMatched: boolean;
  isSaved: boolean;
  role?: string;
  badge: string;
  disabled: boolean;
  onOpen: (name: string) => void;
  onToggle: (names: string[], on: boolean) => void;
}) {
  const n = p.node;
  const box = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (box.current) box.current.indeterminate = p.state === 'some';
  }, [p.state]);
  const hasKids = n.children.length > 0;
  return (
    <div
      className={`tree-row ${p.isMatched ? 'matched' : ''} ${p.isSaved ? 'saved' : ''}`}
      role="treeitem"
      aria-expanded={hasKids ? p.open : undefined}
      aria-level={n.depth + 1}
      aria-selected={p.state ? p.state === 'on' : undefined}
      aria-setsize={n.setSize}
      aria-posinset={n.pos}
      aria-label={`${n.label} ${n.type}`}
      tabIndex={p.focusable ? 0 : -1}
      onFocus={(e) => e.target === e.currentTarget && p.onFocus(n.name)}
      data-module={n.name}
      style={{ paddingLeft: `${n.depth * 14 + 4}px` }}
    >
      <button type="button" className="twisty" aria-label={p.open ? 'Collapse' : 'Expand'} tabIndex={-1} disabled={!hasKids} onClick={() => p.onOpen(n.name)}>
        {hasKids ? (p.open ? '▾' : '▸') : ''}
      </button>
      {p.state ? (
        <input
          ref={box}
          type="checkbox"
          aria-label={`Target ${n.name || 'all modules'}`}
          checked={p.state === 'on'}
          tabIndex={-1}
          disabled={p.disabled}
          onChange={() => p.onToggle(n.leaves, p.state !== 'on')}
        />
      ) : (
        <span className="box-space" />
      )}
      <span className="mod-name mono" title={n.name || '(model)'}>
        {n.label}
      </span>
      <span className="mod-type">{n.type}</span>
      {p.isMatched && <span className="badge lora">{p.badge}</span>}
      {p.role && <span className="badge role" data-role={p.role}>{p.role}</span>}
      {p.isSaved && <span className="badge saved" title="modules_to_save: trained in full and saved with the adapter">saved</span>}
      <span
        className="mod-params"
        title={n.tiedTo ? `shares its weight with ${n.tiedTo} (counted there)` : `${thousands(n.total)} parameters${n.own !== n.total ? ` (${thousands(n.own)} own)` : ''}`}
      >
        {n.total ? compact(n.total) : n.tiedTo ? 'tied' : ''}
      </span>
    </div>
  );
});
