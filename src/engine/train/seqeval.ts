/**
 * Entity-level precision / recall / F1 as seqeval 1.2 computes them (pure functions, no tfjs).
 * Default mode is conlleval's chunking (seqeval.metrics.sequence_labeling.get_entities): an I- without a B-
 * starts an entity, a change of type ends one. Strict mode (mode="strict", scheme IOB1 / IOB2 / IOBES) reads
 * entities with the scheme's start / inside / end patterns (seqeval.scheme) and drops ill-formed ones.
 */
import { EngineError } from '../errors';

export type TagScheme = 'IOB1' | 'IOB2' | 'IOBES';

/** One entity: type, first and last token index (inclusive), and its sentence. */
export interface Entity {
  type: string;
  sentence: number;
  start: number;
  end: number;
}

export interface EntityScores {
  precision: number;
  recall: number;
  f1: number;
  /** Gold entities of this type (seqeval's support). */
  support: number;
}

export interface SeqevalReport {
  /** Micro averages over every entity. */
  micro: EntityScores;
  /** Per entity type, sorted by name. */
  perType: Record<string, EntityScores>;
  /** Correct tags / all tags. */
  accuracy: number;
}

function split(tag: string): { prefix: string; type: string } {
  // seqeval: tag = chunk[0], type = chunk[1:].split('-', 1)[-1] or '_'
  const rest = tag.slice(1);
  const i = rest.indexOf('-');
  return { prefix: tag.slice(0, 1), type: (i < 0 ? rest : rest.slice(i + 1)) || '_' };
}

function endOfChunk(pt: string, t: string, pType: string, type: string): boolean {
  if (pt === 'E' || pt === 'S') return true;
  if ((pt === 'B' || pt === 'I') && (t === 'B' || t === 'S' || t === 'O')) return true;
  return pt !== 'O' && pt !== '.' && pType !== type;
}

function startOfChunk(pt: string, t: string, pType: string, type: string): boolean {
  if (t === 'B' || t === 'S') return true;
  if ((pt === 'E' || pt === 'S' || pt === 'O') && (t === 'E' || t === 'I')) return true;
  return t !== 'O' && t !== '.' && pType !== type;
}

/** seqeval's get_entities (default mode) over sentences; indices count within each sentence. */
export function defaultEntities(sentences: string[][]): Entity[] {
  const out: Entity[] = [];
  sentences.forEach((seq, sentence) => {
    let pt = 'O';
    let pType = '';
    let begin = 0;
    [...seq, 'O'].forEach((tag, i) => {
      const { prefix, type } = split(tag);
      if (endOfChunk(pt, prefix, pType, type)) out.push({ type: pType, sentence, start: begin, end: i - 1 });
      if (startOfChunk(pt, prefix, pType, type)) begin = i;
      pt = prefix;
      pType = type;
    });
  });
  return out;
}

// seqeval.scheme: patterns are (previous prefixes, current prefixes, tag condition).
type Cond = 'same' | 'diff' | 'any';
type Pattern = [string, string, Cond];
const ANY = 'IOBES';
const SCHEMES: Record<TagScheme, { allowed: string; start: Pattern[]; inside: Pattern[]; end: Pattern[] }> = {
  IOB1: {
    allowed: 'IOB',
    start: [['O', 'I', 'any'], ['I', 'I', 'diff'], ['B', 'I', 'any'], ['I', 'B', 'same'], ['B', 'B', 'same']],
    inside: [['B', 'I', 'same'], ['I', 'I', 'same']],
    end: [['I', 'I', 'diff'], ['I', 'O', 'any'], ['I', 'B', 'any'], ['B', 'O', 'any'], ['B', 'I', 'diff'], ['B', 'B', 'same']],
  },
  IOB2: {
    allowed: 'IOB',
    start: [[ANY, 'B', 'any']],
    inside: [['B', 'I', 'same'], ['I', 'I', 'same']],
    end: [['I', 'O', 'any'], ['I', 'I', 'diff'], ['I', 'B', 'any'], ['B', 'O', 'any'], ['B', 'I', 'diff'], ['B', 'B', 'any']],
  },
  IOBES: {
    allowed: 'IOBES',
    start: [[ANY, 'B', 'any'], [ANY, 'S', 'any']],
    inside: [['B', 'I', 'same'], ['B', 'E', 'same'], ['I', 'I', 'same'], ['I', 'E', 'same']],
    end: [['S', ANY, 'any'], ['E', ANY, 'any']],
  },
};

interface Tok {
  prefix: string;
  tag: string;
}

function token(tag: string, scheme: TagScheme): Tok {
  const prefix = tag.slice(0, 1);
  if (!SCHEMES[scheme].allowed.includes(prefix) || prefix === '') {
    throw new EngineError('BAD_DATA', `Invalid tag ${JSON.stringify(tag)} for the ${scheme} scheme: tags must start with one of ${[...SCHEMES[scheme].allowed].join(', ')} (or choose another scheme).`);
  }
  // seqeval.scheme.Token.tag: token[1:].strip('-') or '_'
  return { prefix, tag: tag.slice(1).replace(/^-+|-+$/g, '') || '_' };
}

function matches(prev: Tok, cur: Tok, patterns: Pattern[]): boolean {
  return patterns.some(([p, c, cond]) =>
    p.includes(prev.prefix) && c.includes(cur.prefix) && (cond === 'any' || (cond === 'same') === (prev.tag === cur.tag)));
}

/** seqeval.scheme.Tokens(...).entities for each sentence (end inclusive here). */
export function strictEntities(sentences: string[][], scheme: TagScheme): Entity[] {
  const s = SCHEMES[scheme];
  const out: Entity[] = [];
  sentences.forEach((seq, sentence) => {
    const toks = [...seq, 'O'].map((t) => token(t, scheme));
    let prev = token('O', scheme);
    let i = 0;
    while (i < toks.length) {
      const cur = toks[i];
      if (matches(prev, cur, s.start)) {
        // _forward: extend while tokens are inside
        let end = i + 1;
        let p = cur;
        while (end < toks.length && matches(p, toks[end], s.inside)) p = toks[end++];
        if (end >= toks.length) end = toks.length - 2;
        if (matches(toks[end - 1], toks[end], s.end)) out.push({ type: cur.tag, sentence, start: i, end: end - 1 });
        i = end;
      } else i++;
      prev = toks[i - 1];
    }
  });
  return out;
}

function scores(tp: number, pred: number, gold: number): EntityScores {
  const precision = pred > 0 ? tp / pred : 0;
  const recall = gold > 0 ? tp / gold : 0;
  return { precision, recall, f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0, support: gold };
}

/**
 * seqeval's classification_report numbers for gold and predicted tag sentences (same lengths): default mode, or
 * strict with a scheme. Types are those of gold or predicted entities (strict mode's target_names; in default
 * mode a type only predicted scores 0 / 0 with support 0, as its micro average counts it).
 */
export function seqeval(gold: string[][], pred: string[][], opts: { mode?: 'default' | 'strict'; scheme?: TagScheme } = {}): SeqevalReport {
  if (gold.length !== pred.length || gold.some((g, i) => g.length !== pred[i].length)) {
    throw new EngineError('BAD_ARGUMENT', 'seqeval: gold and predicted tags must have the same sentences and lengths.');
  }
  const read = (s: string[][]) => (opts.mode === 'strict' ? strictEntities(s, opts.scheme ?? 'IOB2') : defaultEntities(s));
  const key = (e: Entity) => `${e.type}\u0000${e.sentence}\u0000${e.start}\u0000${e.end}`;
  const g = read(gold);
  const p = read(pred);
  const gk = new Set(g.map(key));
  const pk = new Set(p.map(key));
  const tp = [...pk].filter((k) => gk.has(k)).length;
  const types = [...new Set([...g, ...p].map((e) => e.type))].sort();
  const perType: Record<string, EntityScores> = {};
  for (const t of types) {
    const gt = new Set(g.filter((e) => e.type === t).map(key));
    const pt = new Set(p.filter((e) => e.type === t).map(key));
    perType[t] = scores([...pt].filter((k) => gt.has(k)).length, pt.size, gt.size);
  }
  let correct = 0;
  let total = 0;
  gold.forEach((s, i) => s.forEach((t, j) => ((correct += t === pred[i][j] ? 1 : 0), total++)));
  return { micro: scores(tp, pk.size, gk.size), perType, accuracy: total ? correct / total : 0 };
}
