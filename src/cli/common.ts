/**
 * Shared CLI plumbing: a small strict argument parser, typed option readers whose errors name the flag,
 * --help text, the error/exit-code wrapper, backend start-up, and model / tokenizer / file helpers.
 *
 * Exit codes: 0 success; 1 an error the engine reports (bad model, bad data, targets not found, ...);
 * 2 a usage error (unknown command or option, bad option value).
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describeError, EngineError } from '../engine/errors';
import { loadModelDir, readJson } from '../engine/io/node-files';
import type { LoadedTensor } from '../engine/io/safetensors';
import type { TaskType } from '../engine/models/types';
import type { Tokenizer } from '../engine/tokenizer';

// ---------------------------------------------------------------------------------------------------------------
// Options and parsing

export interface OptSpec {
  /** 'flag' takes no value (true when present; `--flag=false` is accepted). */
  kind: 'value' | 'flag';
  help: string;
  /** Placeholder in --help, e.g. N, DIR. */
  arg?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  positionals?: { name: string; help: string; required: boolean }[];
  options: Record<string, OptSpec>;
  /** Extra text under the options (examples, notes). */
  notes?: string;
}

export interface Parsed {
  /** Raw option values by flag name (without --); flags are "true" / "false". */
  opts: Map<string, string>;
  positionals: string[];
  help: boolean;
}

/** A usage error: unknown command / option, missing or malformed value. Exit code 2. */
export function usage(message: string): EngineError {
  return new EngineError('BAD_ARGUMENT', message);
}

/** Parses argv strictly against a command's options: unknown options and missing values are errors. */
export function parseArgv(spec: CommandSpec, argv: string[]): Parsed {
  const opts = new Map<string, string>();
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a === '--help' || a === '-h') {
      help = true;
      continue;
    }
    if (!a.startsWith('--') || a === '--') {
      if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) throw usage(`${spec.name}: unknown option ${a} (see ${spec.name} --help)`);
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const o = spec.options[name];
    if (!o) throw usage(`${spec.name}: unknown option --${name} (see ${spec.name} --help)`);
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else if (o.kind === 'flag') {
      const next = argv[i + 1];
      value = next === 'true' || next === 'false' ? (i++, next) : 'true';
    } else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) throw usage(`${spec.name}: --${name} needs a value`);
      value = next;
      i++;
    }
    if (o.kind === 'flag' && value !== 'true' && value !== 'false') throw usage(`--${name} is true or false, got "${value}"`);
    opts.set(name, value);
  }
  if (!help) {
    const pos = spec.positionals ?? [];
    const required = pos.filter((p) => p.required).length;
    if (positionals.length < required) throw usage(`${spec.name}: missing <${pos[positionals.length].name}> (usage: ${spec.usage})`);
    if (positionals.length > pos.length) throw usage(`${spec.name}: unexpected argument "${positionals[pos.length]}" (usage: ${spec.usage})`);
  }
  return { opts, positionals, help };
}

export function helpText(spec: CommandSpec): string {
  const lines = [`Usage: ${spec.usage}`, '', spec.summary, ''];
  for (const p of spec.positionals ?? []) lines.push(`  <${p.name}>`.padEnd(34) + p.help);
  if (spec.positionals?.length) lines.push('');
  lines.push('Options:');
  for (const [name, o] of Object.entries(spec.options)) {
    const left = `  --${name}${o.kind === 'value' ? ` ${o.arg ?? 'VALUE'}` : ''}`;
    lines.push(left.length >= 34 ? `${left}\n${' '.repeat(34)}${o.help}` : left.padEnd(34) + o.help);
  }
  lines.push('  --help'.padEnd(34) + 'Show this help.');
  if (spec.notes) lines.push('', spec.notes);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Typed readers (each error names the flag)

export function str(p: Parsed, name: string): string | undefined {
  return p.opts.get(name);
}

export function required(p: Parsed, name: string, cmd: string): string {
  const v = p.opts.get(name);
  if (v === undefined || v === '') throw usage(`${cmd}: --${name} is required`);
  return v;
}

export function num(p: Parsed, name: string): number | undefined {
  const v = p.opts.get(name);
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw usage(`--${name} must be a number, got "${v}"`);
  return x;
}

export function int(p: Parsed, name: string): number | undefined {
  const v = p.opts.get(name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v.trim())) throw usage(`--${name} must be an integer, got "${v}"`);
  return parseInt(v, 10);
}

export function flag(p: Parsed, name: string): boolean | undefined {
  const v = p.opts.get(name);
  return v === undefined ? undefined : v === 'true';
}

/** Comma-separated list (empty items dropped). */
export function list(p: Parsed, name: string): string[] | undefined {
  const v = p.opts.get(name);
  if (v === undefined) return undefined;
  const items = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (!items.length) throw usage(`--${name} needs at least one value`);
  return items;
}

export function choice<T extends string>(p: Parsed, name: string, choices: readonly T[]): T | undefined {
  const v = p.opts.get(name);
  if (v === undefined) return undefined;
  const hit = choices.find((c) => c.toLowerCase() === v.toLowerCase());
  if (!hit) throw usage(`--${name} must be one of ${choices.join(', ')}; got "${v}"`);
  return hit;
}

/** --task causal_lm|seq_cls|token_cls (any case). */
export function task(p: Parsed, name = 'task'): TaskType | undefined {
  const t = choice(p, name, ['causal_lm', 'seq_cls', 'token_cls', 'seq_2_seq_lm'] as const);
  return t === undefined ? undefined : (t.toUpperCase() as TaskType);
}

// ---------------------------------------------------------------------------------------------------------------
// Running a command

export type CommandFn = (argv: string[]) => Promise<void>;

/** Runs a command; any failure becomes a one-line "error: ..." on stderr and an exit code (stack only with PEFT_STUDIO_DEBUG=1). */
export async function runCli(fn: () => Promise<void>): Promise<number> {
  try {
    await fn();
    return 0;
  } catch (e) {
    const msg = describeError(e).replace(/\s*\n\s*/g, ' ');
    process.stderr.write(`error: ${msg}\n`);
    if (process.env.PEFT_STUDIO_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    return e instanceof EngineError && e.code === 'BAD_ARGUMENT' ? 2 : 1;
  }
}

/** Informational messages go to stderr so stdout carries only results. */
export function note(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

// ---------------------------------------------------------------------------------------------------------------
// Backend

/** --backend cpu|wasm (default wasm); wasm falls back to cpu with a note. Imports tfjs lazily. */
export async function startBackend(p: Parsed): Promise<'cpu' | 'wasm'> {
  const want = choice(p, 'backend', ['wasm', 'cpu'] as const) ?? 'wasm';
  const { useNodeBackend } = await import('../engine/io/node-backend');
  try {
    await useNodeBackend(want);
    return want;
  } catch (e) {
    if (want === 'cpu') throw e;
    note(`note: the wasm backend could not start (${describeError(e)}); falling back to cpu`);
    await useNodeBackend('cpu');
    return 'cpu';
  }
}

export const BACKEND_OPTION: Record<string, OptSpec> = {
  backend: { kind: 'value', arg: 'cpu|wasm', help: 'tfjs backend (default wasm; falls back to cpu with a note).' },
};

// ---------------------------------------------------------------------------------------------------------------
// Files

function requireDir(dir: string, what: string): void {
  if (!existsSync(dir)) throw new EngineError('BAD_CONFIG', `${what} ${dir} not found`);
  if (!statSync(dir).isDirectory()) throw new EngineError('BAD_CONFIG', `${what} ${dir} is not a folder`);
}

/**
 * A model argument is a folder when it exists or looks like a path (starts with . / ~, or is not of the
 * `owner/name[@revision]` shape); otherwise it is a Hub repo id.
 */
function isLocal(arg: string): boolean {
  return existsSync(arg) || /^[.~/\\]/.test(arg) || arg.split('@')[0].split('/').length !== 2;
}

/** The Hub source and cache for a repo id (HF_ENDPOINT / HF_TOKEN honoured, cache in $PEFT_STUDIO_CACHE). */
async function hub(arg: string) {
  const { openModelSource } = await import('../engine/io/node-source');
  const { openNodeCache } = await import('../engine/io/node-cache');
  return { src: openModelSource(arg), cache: openNodeCache() };
}

/** Resolves a config.json once so a bad model_type or field is reported with the file's path. */
async function checkConfig(config: Record<string, unknown>, path: string): Promise<void> {
  const { resolveArchitecture } = await import('../engine/models');
  try {
    resolveArchitecture(config, undefined, path);
  } catch (e) {
    // Which task the model can run depends on --task, which the command checks itself.
    if (!(e instanceof EngineError && e.code === 'UNSUPPORTED_ARCHITECTURE' && / task here/.test(e.message))) throw e;
  }
}

/** config.json of a model folder or Hub repo (for a repo, only config.json and safetensors headers are read). */
export async function readModelConfig(arg: string): Promise<Record<string, unknown>> {
  if (isLocal(arg)) {
    requireDir(arg, 'model folder');
    const path = join(arg, 'config.json');
    const config = readJson(path);
    await checkConfig(config, path);
    return config;
  }
  const { src, cache } = await hub(arg);
  const { inspectModel } = await import('../engine/io/inspect');
  return (await inspectModel(src, { cache, requireWeights: false })).config;
}

/** config.json + weights (+ tokenizer files for a Hub repo) of a model folder or Hub repo, downloading with progress. */
export async function readModel(arg: string): Promise<{ config: Record<string, unknown>; tensors: Map<string, LoadedTensor>; tokenizerFiles?: { tokenizerJson: object; tokenizerConfig?: object } }> {
  if (isLocal(arg)) {
    requireDir(arg, 'model folder');
    // config.json first, with its path in any message, before the weights are read.
    await checkConfig(readJson(join(arg, 'config.json')), join(arg, 'config.json'));
    const { config, tensors } = loadModelDir(arg);
    return { config, tensors };
  }
  const { src, cache } = await hub(arg);
  const { downloadModel } = await import('../engine/io/download');
  const { formatBytes } = await import('../engine/memory');
  let last = 0;
  const r = await downloadModel(src, {
    cache,
    onProgress: (pr) => {
      const now = Date.now();
      if (now - last < 1000 && pr.fileLoaded < pr.fileTotal) return;
      last = now;
      note(`${pr.file}: ${formatBytes(pr.fileLoaded)} / ${formatBytes(pr.fileTotal)}${pr.fromCache ? ' (cache)' : ` at ${formatBytes(pr.bytesPerSec)}/s`}`);
    },
  });
  const tokenizerFiles = r.tokenizerJson ? { tokenizerJson: r.tokenizerJson as object, tokenizerConfig: (r.tokenizerConfig ?? undefined) as object | undefined } : undefined;
  return { config: r.config, tensors: r.weights, tokenizerFiles };
}

/**
 * The tokenizer of `--tokenizer DIR`, else the model's (folder with tokenizer.json, or the Hub repo's files), else
 * none. A tokenizer with more ids than the model's vocab_size is an error naming both files (training would
 * index past the embedding); `modelVocabSize` skips reading config.json again when the caller has it.
 */
export async function readTokenizer(
  modelArg: string,
  tokenizerDir?: string,
  hubFiles?: { tokenizerJson: object; tokenizerConfig?: object },
  modelVocabSize?: number,
): Promise<Tokenizer | undefined> {
  if (!tokenizerDir && hubFiles) {
    // downloadModel has checked these files against the repo's config.json.
    const { loadTokenizer } = await import('../engine/tokenizer');
    return loadTokenizer({ ...hubFiles, fileName: `tokenizer.json of ${modelArg}` });
  }
  const dir = tokenizerDir ?? modelArg;
  if (tokenizerDir) requireDir(tokenizerDir, 'tokenizer folder');
  else if (!isLocal(dir) || !existsSync(join(dir, 'tokenizer.json'))) return undefined;
  const { loadTokenizerFromDir } = await import('../engine/io/node-tokenizer');
  const tok = await loadTokenizerFromDir(dir);
  const { checkTokenizerFitsModel } = await import('../engine/tokenizer');
  const { resolveArchitecture } = await import('../engine/models');
  const vocab = modelVocabSize ?? resolveArchitecture(await readModelConfig(modelArg)).config.vocabSize;
  const modelFile = isLocal(modelArg) ? join(modelArg, 'config.json') : `config.json of ${modelArg}`;
  checkTokenizerFitsModel(tok.vocabSize, vocab, join(dir, 'tokenizer.json'), modelFile);
  return tok;
}

export function requireFile(path: string, what: string): void {
  if (!existsSync(path)) throw new EngineError('BAD_DATA', `${what} ${path} not found`);
  if (!statSync(path).isFile()) throw new EngineError('BAD_DATA', `${what} ${path} is not a file`);
}

/** Writes a file, creating parent folders. */
export function writeOut(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(resolve(path)), { recursive: true });
  writeFileSync(path, data);
}

export function writeJson(path: string, obj: unknown): void {
  writeOut(path, `${JSON.stringify(obj, null, 2)}\n`);
}

/** One compact JSON object per line, modules as rows (keeps tree.json readable and diffable). */
export function jsonRows(rows: unknown[]): string {
  return rows.length ? `[\n${rows.map((r) => `    ${JSON.stringify(r)}`).join(',\n')}\n  ]` : '[]';
}
