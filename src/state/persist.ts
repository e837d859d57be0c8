/**
 * What a project keeps across a reload or a closed tab, all in this browser (nothing leaves the tab): small
 * settings in localStorage, one key each, and uploaded datasets in IndexedDB. TABLE says for every key where it
 * lives, its version, how a stored value is checked when read back and which project-store fields it holds.
 *
 * Every localStorage value is stored as `{"v": <version>, "value": ...}` under `peft-studio.project.<key>`. On
 * load, a value that does not parse, has another version, or fails its check is dropped (removed, with a
 * console warning) and the default is used; keys this studio no longer knows are removed too. Nothing here
 * throws at the page. actions.ts restores a loaded project in the order the boot needs (see restoreProject).
 */
import type { ColumnMapping } from '../engine/train/data-parse';
import { checkField } from '../engine/peft/schema';
import type { BackendChoice, MethodInfo, TaskType, TrainArgs } from '../worker/protocol';
import { DEFAULT_ARGS, type DataRef, type MethodValues, type ModelRef, type ProjectState, type StorageStatus, type StoredDatasetInfo } from './project';
import type { TargetText } from './targets-text';
import { CHAT_FORMATS, type DataFormatSetting } from '../engine/train/chat-format';
import type { TrainOn } from '../engine/train/chat-encode';
import type { ChatSettings } from '../worker/chat-data';

export const PREFIX = 'peft-studio.project.';

/** A stored value failed its check: the whole key is dropped. */
export class Invalid extends Error {}
const fail = (why: string): never => {
  throw new Invalid(why);
};
type Warn = (message: string) => void;

// --- checks -----------------------------------------------------------------------------------------------

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
function object(x: unknown, what: string): Record<string, unknown> {
  return isObject(x) ? x : fail(`${what} is not an object`);
}
function oneOf<T>(values: readonly T[], x: unknown, what: string): T {
  return values.includes(x as T) ? (x as T) : fail(`${what} must be one of ${values.join(', ')}; got ${JSON.stringify(x)}`);
}
function str(x: unknown, what: string, o: { nonEmpty?: boolean; max?: number } = {}): string {
  if (typeof x !== 'string') return fail(`${what} is not a string`);
  if (o.nonEmpty && !x.trim()) return fail(`${what} is empty`);
  if (x.length > (o.max ?? 10_000)) return fail(`${what} is too long`);
  return x;
}
function bool(x: unknown, what: string): boolean {
  return typeof x === 'boolean' ? x : fail(`${what} is not true or false`);
}
function num(x: unknown, what: string, o: { min?: number; max?: number; int?: boolean } = {}): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) return fail(`${what} is not a number`);
  if (o.int && !Number.isInteger(x)) return fail(`${what} is not a whole number`);
  if ((o.min !== undefined && x < o.min) || (o.max !== undefined && x > o.max)) return fail(`${what} is out of range (${x})`);
  return x;
}

const BACKENDS: readonly BackendChoice[] = ['auto', 'webgpu', 'wasm', 'cpu'];
const TASKS: readonly TaskType[] = ['CAUSAL_LM', 'SEQ_CLS', 'TOKEN_CLS', 'SEQ_2_SEQ_LM'];

/** Training arguments, as the Training panel bounds them; a missing field takes its default. */
const ARG_CHECKS: { [K in keyof TrainArgs]-?: (x: unknown) => TrainArgs[K] } = {
  learningRate: (x) => num(x, 'learning rate', { min: 1e-8, max: 10 }),
  epochs: (x) => num(x, 'epochs', { min: 0.01, max: 10_000 }),
  maxSteps: (x) => num(x, 'max steps', { min: 1, int: true }),
  batchSize: (x) => num(x, 'batch size', { min: 1, max: 512, int: true }),
  gradientAccumulationSteps: (x) => num(x, 'gradient accumulation', { min: 1, int: true }),
  warmupSteps: (x) => num(x, 'warmup steps', { min: 0, int: true }),
  scheduler: (x) => oneOf(['constant', 'linear', 'cosine'] as const, x, 'schedule'),
  weightDecay: (x) => num(x, 'weight decay', { min: 0 }),
  maxGradNorm: (x) => num(x, 'max grad norm', { min: 0 }),
  evalSteps: (x) => num(x, 'eval steps', { min: 0, int: true }),
  seed: (x) => num(x, 'seed', { min: 0, int: true }),
  maxLength: (x) => num(x, 'max length', { min: 8, max: 4096, int: true }),
  gradientCheckpointing: (x) => oneOf(['auto', 'on', 'off'] as const, x, 'gradient checkpointing'),
  loraplusLrRatio: (x) => (x === null ? null : num(x, 'LoRA+ lr ratio', { min: 0 })),
  saveSteps: (x) => num(x, 'save steps', { min: 0, int: true }),
  saveTotalLimit: (x) => (x === null ? null : num(x, 'checkpoints to keep', { min: 1, int: true })),
  metricForBestModel: (x) => oneOf(['eval_loss', 'eval_accuracy', 'eval_f1', 'eval_chrf', 'eval_exact_match', 'eval_rougeL'] as const, x, 'metric for best model'),
  greaterIsBetter: (x) => (x === null ? null : bool(x, 'greater is better')),
  loadBestModelAtEnd: (x) => bool(x, 'load best model at end'),
  earlyStoppingPatience: (x) => (x === null ? null : num(x, 'early stopping patience', { min: 1, int: true })),
  generationEvalRows: (x) => (x === null ? null : num(x, 'generation eval rows', { min: 1, int: true })),
  maxTargetLength: (x) => (x === null ? null : num(x, 'max target length', { min: 2, max: 4096, int: true })),
};

function checkArgs(raw: unknown, warn: Warn): TrainArgs {
  const o = object(raw, 'training arguments');
  const args = { ...DEFAULT_ARGS } as Record<string, unknown>;
  for (const [k, check] of Object.entries(ARG_CHECKS)) {
    if (!(k in o)) continue;
    try {
      args[k] = check(o[k]);
    } catch (e) {
      warn(`${(e as Error).message}: the default is used`);
    }
  }
  return args as unknown as TrainArgs;
}

export function checkMapping(x: unknown): ColumnMapping {
  const m = object(x, 'column mapping');
  const col = (k: string) => str(m[k], `column "${k}"`, { nonEmpty: true, max: 500 });
  switch (m.kind) {
    case 'text':
      return { kind: 'text', text: col('text') };
    case 'text-label':
      return { kind: 'text-label', text: col('text'), label: col('label') };
    case 'prompt-response':
      return { kind: 'prompt-response', prompt: col('prompt'), response: col('response') };
    default:
      return fail(`unknown column mapping kind ${JSON.stringify(m.kind)}`);
  }
}

function checkModelRef(x: unknown): ModelRef {
  const m = object(x, 'model');
  switch (m.kind) {
    case 'builtin':
      return m.id === undefined ? { kind: 'builtin' } : { kind: 'builtin', id: oneOf(['sotu-t5'] as const, m.id, 'built-in model') };
    case 'hub': {
      const repo = str(m.repo, 'repo', { nonEmpty: true, max: 200 });
      if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repo)) fail(`"${repo}" is not a Hub repo id`);
      const revision = str(m.revision, 'revision', { nonEmpty: true, max: 300 });
      if (/\s/.test(revision)) fail(`revision "${revision}" has spaces`);
      const endpoint = str(m.endpoint, 'Hub URL', { nonEmpty: true, max: 2000 });
      if (!/^https?:\/\/[^\s]+$/.test(endpoint)) fail(`"${endpoint}" is not an http(s) URL`);
      return { kind: 'hub', repo, revision, endpoint };
    }
    case 'local':
      return { kind: 'local', name: str(m.name, 'folder name', { nonEmpty: true, max: 500 }), picker: oneOf(['folder', 'files'] as const, m.picker, 'picker') };
    default:
      return fail(`unknown model kind ${JSON.stringify(m.kind)}`);
  }
}

function checkTargetText(x: unknown): TargetText {
  const t = object(x, 'targets');
  return {
    mode: oneOf(['list', 'regex', 'all-linear'] as const, t.mode, 'target_modules kind'),
    target: str(t.target, 'target_modules'),
    exclude: str(t.exclude, 'exclude_modules'),
    excludeRegex: bool(t.excludeRegex, 'exclude is a regex'),
    layers: str(t.layers, 'layers_to_transform'),
    layersPattern: str(t.layersPattern, 'layers_pattern'),
  };
}

function checkDataRef(x: unknown): DataRef | null {
  if (x === null) return null;
  const r = object(x, 'dataset');
  if (r.kind === 'builtin') return { kind: 'builtin', id: str(r.id, 'dataset id', { nonEmpty: true, max: 200 }) };
  if (r.kind === 'upload') return { kind: 'upload', id: str(r.id, 'upload id', { nonEmpty: true, max: 200 }), name: str(r.name, 'file name', { max: 500 }) };
  return fail(`unknown dataset kind ${JSON.stringify(r.kind)}`);
}

/** JSON-like values only (what a form can hold). */
function plain(x: unknown, depth = 0): boolean {
  if (x === null || typeof x === 'string' || typeof x === 'boolean') return true;
  if (typeof x === 'number') return Number.isFinite(x);
  if (depth > 6) return false;
  if (Array.isArray(x)) return x.every((v) => plain(v, depth + 1));
  return isObject(x) && Object.values(x).every((v) => plain(v, depth + 1));
}

function checkMethod(x: unknown, warn: Warn): { method: string; settings: Record<string, MethodValues> } {
  const o = object(x, 'method');
  const method = str(o.method, 'peft_type', { nonEmpty: true, max: 64 });
  if (!/^[A-Z][A-Z0-9_]*$/.test(method)) fail(`"${method}" is not a PEFT type`);
  const settings: Record<string, MethodValues> = {};
  for (const [type, values] of Object.entries(object(o.settings, 'method settings'))) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(type) || !isObject(values)) {
      warn(`settings of "${type}" are not readable: dropped`);
      continue;
    }
    settings[type] = {};
    for (const [k, v] of Object.entries(values)) {
      if (plain(v)) settings[type][k] = v;
      else warn(`${type}.${k} is not a plain value: dropped`);
    }
  }
  return { method, settings: settings as Record<string, MethodValues> };
}

/**
 * Restored method settings against the schemas the worker sent: unknown methods and fields go, values a field
 * refuses go (their defaults apply), and a method the engine does not have falls back to LoRA.
 */
export function checkSettingsAgainst(
  methods: MethodInfo[], method: string, settings: Record<string, MethodValues>, warn: Warn = consoleWarn,
): { method: string; settings: Record<string, MethodValues> } {
  const out: Record<string, MethodValues> = {};
  for (const [type, values] of Object.entries(settings)) {
    const info = methods.find((m) => m.peftType === type);
    if (!info) {
      warn(`stored settings of method ${type}, which this studio does not have: dropped`);
      continue;
    }
    out[type] = {};
    for (const [k, v] of Object.entries(values)) {
      const f = info.schema.find((x) => x.key === k);
      if (!f || f.kind === 'fixed' || f.ui === 'none') {
        warn(`stored ${type} field ${k} is not a field of the form: dropped`);
        continue;
      }
      try {
        checkField(f, v);
        out[type][k] = v;
      } catch (e) {
        warn(`stored ${type} ${f.name}: ${(e as Error).message} The default is used.`);
      }
    }
  }
  const known = methods.some((m) => m.peftType === method);
  if (!known) warn(`stored method ${method} is not available: LORA is used`);
  return { method: known ? method : 'LORA', settings: out };
}

// --- the table --------------------------------------------------------------------------------------------

interface LocalEntry<T> {
  storage: 'localStorage';
  version: number;
  /** The project-store fields the key holds: a change to one of them writes the key. */
  fields: readonly (keyof ProjectState)[];
  /** When the value reaches the worker on restore (actions.ts restoreProject). */
  restored: string;
  /** Checks a stored value; throws Invalid to drop it, or drops parts of it with a warning. */
  check: (raw: unknown, warn: Warn) => T;
  /** The value to keep for a state; null keeps nothing (the key is removed). */
  from: (s: ProjectState) => T | null;
  /** The store fields a restored value sets. */
  to: (v: T) => Partial<ProjectState>;
}

interface DbEntry {
  storage: 'indexedDB';
  /** IndexedDB database version (its object stores); records carry their own version. */
  version: number;
  recordVersion: number;
  database: string;
  stores: readonly string[];
  fields: readonly (keyof ProjectState)[];
  restored: string;
  check: (raw: unknown) => StoredDatasetInfo;
}

const local = <T,>(e: LocalEntry<T>) => e;

export const DB_NAME = 'peft-studio';
const META = 'datasets';
const BYTES = 'dataset-bytes';

/** Every persisted key of a project. */
export const TABLE = {
  backend: local<BackendChoice>({
    storage: 'localStorage', version: 1, fields: ['backendChoice'],
    restored: 'first: the worker starts this backend',
    check: (x) => oneOf(BACKENDS, x, 'backend'),
    from: (s) => s.backendChoice,
    to: (backendChoice) => ({ backendChoice }),
  }),
  training: local<{ args: TrainArgs; limitBy: 'epochs' | 'maxSteps'; lrTouched: boolean }>({
    storage: 'localStorage', version: 1, fields: ['args', 'limitBy', 'lrTouched'],
    restored: 'before the model loads (its memory estimate uses batch size, max length and checkpointing)',
    check: (x, warn) => {
      const o = object(x, 'training');
      return { args: checkArgs(o.args, warn), limitBy: oneOf(['epochs', 'maxSteps'] as const, o.limitBy, 'stop after'), lrTouched: bool(o.lrTouched, 'lrTouched') };
    },
    from: (s) => ({ args: s.args, limitBy: s.limitBy, lrTouched: s.lrTouched }),
    to: (v) => v,
  }),
  method: local<{ method: string; settings: Record<string, MethodValues> }>({
    storage: 'localStorage', version: 1, fields: ['method', 'settings'],
    restored: 'once the backend is ready: checked against the method schemas it sends',
    check: checkMethod,
    from: (s) => ({ method: s.method, settings: s.settings }),
    to: (v) => ({ method: v.method as ProjectState['method'], settings: v.settings }),
  }),
  model: local<ModelRef>({
    storage: 'localStorage', version: 1, fields: ['modelRef'],
    restored: 'after the backend: built-in and Hub models load again (Hub ones from the browser cache when complete); a local folder waits for the person to pick it again',
    check: checkModelRef,
    from: (s) => s.modelRef,
    to: (modelRef) => ({ modelRef }),
  }),
  task: local<TaskType>({
    storage: 'localStorage', version: 1, fields: ['task'],
    restored: 'once the model header is read (the model sets its own task first)',
    check: (x) => oneOf(TASKS, x, 'task'),
    from: (s) => s.task,
    to: (task) => ({ task }),
  }),
  targets: local<TargetText>({
    storage: 'localStorage', version: 1, fields: ['targetText'],
    restored: "once the model header is read (in place of PEFT's default targets for it)",
    check: checkTargetText,
    from: (s) => s.targetText,
    to: (targetText) => ({ targetText }),
  }),
  data: local<{ ref: DataRef | null; validationSplit: number }>({
    storage: 'localStorage', version: 1, fields: ['dataRef', 'validationSplit'],
    restored: 'a built-in id once the dataset list is known (an unknown id: the default); an upload from IndexedDB',
    check: (x) => {
      const o = object(x, 'data');
      return { ref: checkDataRef(o.ref), validationSplit: num(o.validationSplit, 'validation split', { min: 0, max: 0.5 }) };
    },
    from: (s) => ({ ref: s.dataRef, validationSplit: s.validationSplit }),
    to: (v) => ({ dataRef: v.ref, validationSplit: v.validationSplit }),
  }),
  chat: local<ChatSettings>({
    storage: 'localStorage', version: 1, fields: ['chat'],
    restored: 'before the data loads: how instruction / chat rows are rendered and what the loss is on',
    check: (x) => {
      const o = object(x, 'chat');
      // auto, model or a built-in template's name (an unknown name is refused by the worker, naming the known ones).
      const template = str(o.template, 'chat template', { nonEmpty: true, max: 64 });
      if (!/^[a-z0-9_-]+$/.test(template)) fail(`chat template ${JSON.stringify(template)} is not a template name`);
      return {
        format: oneOf<DataFormatSetting>(['auto', 'text', ...CHAT_FORMATS], o.format, 'data format'),
        template,
        trainOn: oneOf<TrainOn>(['responses', 'last_response', 'all'], o.trainOn, 'loss on'),
        // Saved before packing existed: off.
        ...(o.packing === undefined ? {} : { packing: bool(o.packing, 'packing') }),
      };
    },
    from: (s) => s.chat,
    to: (chat) => ({ chat }),
  }),
  datasets: {
    storage: 'indexedDB', version: 1, recordVersion: 1, database: DB_NAME, stores: [META, BYTES],
    fields: ['uploads', 'dataRef', 'mapping'],
    restored: 'listed at boot; the selected upload is read back as a File with its column mapping',
    check: checkDatasetMeta,
  } satisfies DbEntry,
} as const;

type Table = typeof TABLE;
type LocalKey = { [K in keyof Table]: Table[K] extends { storage: 'localStorage' } ? K : never }[keyof Table];
type ValueOf<E> = E extends { storage: 'localStorage'; check: (raw: unknown, warn: Warn) => infer T } ? T : never;
/** A project as read back: each key that was stored and passed its check. */
export type Saved = { [K in LocalKey]?: ValueOf<Table[K]> };

const LOCAL_KEYS = (Object.keys(TABLE) as (keyof Table)[]).filter((k): k is LocalKey => TABLE[k].storage === 'localStorage');
const localEntry = (k: LocalKey) => TABLE[k] as unknown as LocalEntry<unknown>;

export const storageKey = (k: LocalKey) => `${PREFIX}${k}`;

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
  readonly length: number;
  key(i: number): string | null;
}

function consoleWarn(message: string) {
  console.warn(`[peft-studio] ${message}`);
}

function defaultStorage(): StorageLike | undefined {
  try {
    return globalThis.localStorage ?? undefined;
  } catch {
    return undefined; // storage disabled (some private modes, sandboxed frames)
  }
}

function ownKeys(st: StorageLike): string[] {
  const keys: string[] = [];
  for (let i = 0; i < st.length; i++) {
    const k = st.key(i);
    if (k?.startsWith(PREFIX)) keys.push(k);
  }
  return keys;
}

/** Reads the stored project: every key that parses, has its version and passes its check. */
export function loadSaved(st: StorageLike | undefined = defaultStorage(), warn: Warn = consoleWarn): Saved {
  const saved: Record<string, unknown> = {};
  if (!st) return saved;
  try {
    for (const k of ownKeys(st)) {
      const key = k.slice(PREFIX.length);
      if (!(LOCAL_KEYS as string[]).includes(key)) {
        warn(`stored "${k}" is not a setting this studio keeps: removed`);
        st.removeItem(k);
      }
    }
    for (const key of LOCAL_KEYS) {
      const e = localEntry(key);
      const raw = st.getItem(storageKey(key));
      if (raw === null) continue;
      const drop = (why: string) => {
        warn(`stored ${key} dropped (${why}); the default is used`);
        st.removeItem(storageKey(key));
      };
      let env: unknown;
      try {
        env = JSON.parse(raw);
      } catch {
        drop('not JSON');
        continue;
      }
      if (!isObject(env) || !('value' in env)) {
        drop('not a stored value');
        continue;
      }
      if (env.v !== e.version) {
        drop(`version ${JSON.stringify(env.v)}, this studio reads version ${e.version}`);
        continue;
      }
      try {
        saved[key] = e.check(env.value, (m) => warn(`stored ${key}: ${m}`));
      } catch (err) {
        drop(err instanceof Invalid ? err.message : `check failed: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    warn(`stored project could not be read: ${(err as Error).message}`);
  }
  return saved as Saved;
}

/** The store fields a saved project sets, in one patch. */
export function savedPatch(saved: Saved): Partial<ProjectState> {
  let patch: Partial<ProjectState> = {};
  for (const key of LOCAL_KEYS) {
    const v = saved[key];
    if (v !== undefined) patch = { ...patch, ...localEntry(key).to(v) };
  }
  return patch;
}

/** What a state would store: the saved project it stands for. */
export function snapshotOf(s: ProjectState): Saved {
  const out: Record<string, unknown> = {};
  for (const key of LOCAL_KEYS) {
    const v = localEntry(key).from(s);
    if (v !== null) out[key] = structuredClone(v);
  }
  return out as Saved;
}

/**
 * Keeps the project in localStorage as it changes: a key is written when one of its fields changed and its
 * value differs from what was written. The first write asks the browser to keep this site's storage
 * (navigator.storage.persist), once.
 */
export class ProjectPersistence {
  private written = new Map<LocalKey, string | null>();
  private failed = false;

  constructor(
    private readonly storage: () => StorageLike | undefined = defaultStorage,
    private readonly onFirstWrite: () => void = requestPersistentStorage,
    private readonly warn: Warn = consoleWarn,
  ) {}

  /** Writes the keys whose fields changed from `prev` (all keys without `prev`). */
  save(s: ProjectState, prev?: ProjectState): void {
    const st = this.storage();
    if (!st) return;
    for (const key of LOCAL_KEYS) {
      const e = localEntry(key);
      if (prev && e.fields.every((f) => s[f] === prev[f])) continue;
      const v = e.from(s);
      const json = v === null ? null : JSON.stringify({ v: e.version, value: v });
      if (this.written.get(key) === json) continue;
      try {
        if (json === null) st.removeItem(storageKey(key));
        else st.setItem(storageKey(key), json);
        this.written.set(key, json);
        if (json !== null) this.onFirstWrite();
      } catch (err) {
        if (!this.failed) this.warn(`settings could not be stored (${(err as Error).message}); they last for this session only`);
        this.failed = true;
      }
    }
  }

  /** Takes `s` as what is stored: nothing is written until it changes. */
  baseline(s: ProjectState): void {
    for (const key of LOCAL_KEYS) {
      const v = localEntry(key).from(s);
      this.written.set(key, v === null ? null : JSON.stringify({ v: localEntry(key).version, value: v }));
    }
  }

  /** Forgets the stored project; `s` counts as written (nothing is stored until it changes). */
  forget(s: ProjectState): void {
    const st = this.storage();
    try {
      if (st) for (const k of ownKeys(st)) st.removeItem(k);
    } catch {
      // nothing stored
    }
    this.baseline(s);
  }
}

// --- navigator.storage ------------------------------------------------------------------------------------

let persistAsked: Promise<boolean> | null = null;
const persistListeners = new Set<() => void>();

/** Asks the browser, once, not to evict this site's storage; listeners hear when it has answered. */
export function requestPersistentStorage(): void {
  if (persistAsked) return;
  const s = globalThis.navigator?.storage;
  persistAsked = Promise.resolve(s?.persist ? s.persist() : false).catch(() => false);
  void persistAsked.then(() => persistListeners.forEach((l) => l()));
}

export function onPersistAnswered(l: () => void): void {
  persistListeners.add(l);
}

/** Storage used and granted for this origin, and whether it is persistent; null where the browser cannot say. */
export async function storageStatus(): Promise<StorageStatus | null> {
  const s = globalThis.navigator?.storage;
  if (!s?.estimate) return null;
  try {
    const { usage, quota } = await s.estimate();
    const persistent = s.persisted ? await s.persisted().catch(() => null) : null;
    return { usage: usage ?? 0, quota: quota ?? 0, persistent };
  } catch {
    return null;
  }
}

// --- uploaded datasets (IndexedDB) ------------------------------------------------------------------------

interface MetaRecord extends StoredDatasetInfo {
  v: number;
}

function checkDatasetMeta(raw: unknown): StoredDatasetInfo {
  const r = object(raw, 'dataset record');
  if (r.v !== TABLE.datasets.recordVersion) fail(`record version ${JSON.stringify(r.v)}, this studio reads version ${TABLE.datasets.recordVersion}`);
  return {
    id: str(r.id, 'id', { nonEmpty: true, max: 200 }),
    name: str(r.name, 'file name', { nonEmpty: true, max: 500 }),
    type: str(r.type, 'type', { max: 200 }),
    size: num(r.size, 'size', { min: 0, int: true }),
    savedAt: num(r.savedAt, 'saved at', { min: 0 }),
    mapping: r.mapping === null ? null : checkMapping(r.mapping),
  };
}

/** Why an upload could not be kept, in the person's terms. */
export function storeFailure(e: unknown, name: string): string {
  const err = e as { name?: string; message?: string } | null;
  const quota = err?.name === 'QuotaExceededError' || /quota/i.test(err?.message ?? '');
  const why = quota
    ? "the browser's storage for this site is full"
    : `the browser refused (${err?.message || err?.name || String(e)})`;
  return (
    `${name} could not be kept in this browser: ${why}. It is used for this session; after a reload it has to be uploaded again. ` +
    (quota ? 'Deleting cached models or stored datasets frees space.' : '')
  ).trim();
}

function done<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function finished(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new DOMException('The write was aborted', 'AbortError'));
  });
}

/**
 * Uploaded datasets in IndexedDB: a metadata record (name, type, size, column mapping) and the file's bytes,
 * under one id. An upload with the name of a stored one replaces it. Records that fail their check are
 * deleted with a warning when listed.
 */
export class DatasetStore {
  private db: Promise<IDBDatabase> | null = null;

  constructor(
    private readonly factory: () => IDBFactory | undefined = () => globalThis.indexedDB,
    private readonly warn: Warn = consoleWarn,
  ) {}

  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise<IDBDatabase>((resolve, reject) => {
      const idb = this.factory();
      if (!idb) return reject(new Error('IndexedDB is not available'));
      const req = idb.open(DB_NAME, TABLE.datasets.version);
      req.onupgradeneeded = () => {
        const db = req.result;
        for (const name of TABLE.datasets.stores) if (!db.objectStoreNames.contains(name)) db.createObjectStore(name, name === META ? { keyPath: 'id' } : undefined);
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error('the dataset store is open in an older tab of the studio'));
    }).catch((e) => {
      this.db = null;
      throw e;
    });
    return this.db;
  }

  /** The stored uploads, newest first. */
  async list(): Promise<StoredDatasetInfo[]> {
    const db = await this.open();
    const raw = await done(db.transaction(META).objectStore(META).getAll());
    const out: StoredDatasetInfo[] = [];
    const bad: IDBValidKey[] = [];
    for (const r of raw) {
      try {
        out.push(checkDatasetMeta(r));
      } catch (e) {
        this.warn(`stored dataset ${JSON.stringify((r as { name?: unknown })?.name ?? '?')} dropped (${(e as Error).message})`);
        if (isObject(r) && (typeof r.id === 'string' || typeof r.id === 'number')) bad.push(r.id);
      }
    }
    if (bad.length) {
      const tx = db.transaction([META, BYTES], 'readwrite');
      for (const id of bad) {
        tx.objectStore(META).delete(id);
        tx.objectStore(BYTES).delete(id);
      }
      await finished(tx).catch(() => undefined);
    }
    return out.sort((a, b) => b.savedAt - a.savedAt);
  }

  /** Keeps a file; an upload of the same name replaces the stored one (and its mapping). */
  async put(file: Blob & { name: string }, mapping: ColumnMapping | null = null): Promise<StoredDatasetInfo> {
    const bytes = await file.arrayBuffer();
    const existing = (await this.list()).find((d) => d.name === file.name);
    const meta: MetaRecord = {
      v: TABLE.datasets.recordVersion, id: existing?.id ?? newId(), name: file.name, type: file.type ?? '', size: bytes.byteLength,
      savedAt: Date.now(), mapping,
    };
    const db = await this.open();
    const tx = db.transaction([META, BYTES], 'readwrite');
    tx.objectStore(BYTES).put(bytes, meta.id);
    tx.objectStore(META).put(meta);
    await finished(tx);
    const { v: _, ...info } = meta;
    return info;
  }

  /** A stored upload as a File, with its mapping; null when it is gone or unreadable (then it is deleted). */
  async get(id: string): Promise<{ info: StoredDatasetInfo; file: File } | null> {
    const db = await this.open();
    const tx = db.transaction([META, BYTES]);
    const [raw, bytes] = await Promise.all([done(tx.objectStore(META).get(id)), done(tx.objectStore(BYTES).get(id))]);
    if (raw === undefined) return null;
    try {
      const info = checkDatasetMeta(raw);
      if (!(bytes instanceof ArrayBuffer) || bytes.byteLength !== info.size) fail('its bytes are missing or incomplete');
      return { info, file: new File([bytes as ArrayBuffer], info.name, { type: info.type, lastModified: info.savedAt }) };
    } catch (e) {
      this.warn(`stored dataset ${id} dropped (${(e as Error).message})`);
      await this.delete(id).catch(() => undefined);
      return null;
    }
  }

  async setMapping(id: string, mapping: ColumnMapping | null): Promise<void> {
    const db = await this.open();
    const tx = db.transaction(META, 'readwrite');
    const store = tx.objectStore(META);
    const raw = await done(store.get(id));
    if (isObject(raw)) store.put({ ...raw, mapping });
    await finished(tx);
  }

  async delete(id: string): Promise<void> {
    const db = await this.open();
    const tx = db.transaction([META, BYTES], 'readwrite');
    tx.objectStore(META).delete(id);
    tx.objectStore(BYTES).delete(id);
    await finished(tx);
  }

  close(): void {
    void this.db?.then((db) => db.close()).catch(() => undefined);
    this.db = null;
  }
}

function newId(): string {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/** The page's dataset store. */
export const datasets = new DatasetStore();

// --- the page's persistence -------------------------------------------------------------------------------

/**
 * Writes the project store to storage as it changes (settings to localStorage, the mapping of a stored upload
 * to IndexedDB). Returns what New project uses to forget it.
 */
export function startPersistence(store: {
  getState(): ProjectState;
  subscribe(l: (s: ProjectState, p: ProjectState) => void): () => void;
}): ProjectPersistence {
  const p = new ProjectPersistence();
  p.baseline(store.getState());
  store.subscribe((s, prev) => {
    p.save(s, prev);
    if (s.mapping !== prev.mapping && s.dataRef?.kind === 'upload' && s.dataRef === prev.dataRef) {
      void datasets.setMapping(s.dataRef.id, s.mapping).catch((e) => consoleWarn(`column mapping not stored: ${(e as Error).message}`));
    }
  });
  return p;
}
