/**
 * The project store: what the person set up (model, task, method, targets, data, training arguments, backend)
 * and what the worker reported about it (model info, module tree, target match, data summary).
 * Changes are named actions; boot() in src/state/actions.ts turns setup changes into worker requests.
 */
import { create } from 'zustand';
import type { ColumnMapping } from '../engine/train/data-parse';
import type { ChatSettings } from '../worker/chat-data';
import type { HubDataChoice } from './hub-data';
import { plannedSteps } from '../engine/train/schedule';
import type {
  BackendChoice, BackendName, CachedModelInfo, DataSource, DataSummary, DownloadProgress, InspectionInfo, MemoryReport,
  MethodInfo, ModelInfo, PeftSettings, PeftType, TargetResult, TaskType, TrainArgs, TreeInfo, WorkerEvent,
} from '../worker/protocol';
import { textForSelection, textToSpec, type TargetText } from './targets-text';
import { PRESET_FIELDS, presetFor, presetRoleSelection, type PresetArgs, type PresetId, type PresetTargets, type TrainPreset } from '../engine/train/presets';
import { METHOD_DEFAULTS, RUN_DEFAULTS } from '../engine/train/defaults';

/** A method's form values by config key (camelCase), as its schema describes them. */
export type MethodValues = Record<string, unknown>;
export type Status = 'idle' | 'loading' | 'ready' | 'error';

/**
 * Where the studio's form starts for a field, when it differs from PEFT's dataclass default: the shared method
 * defaults (src/engine/train/defaults.ts), which the CLI's flags default to as well.
 */
const FORM_START: Readonly<Record<string, Readonly<MethodValues>>> = METHOD_DEFAULTS;

/** The form's starting values for a method: PEFT's defaults, then the studio's starting points. */
export function formDefaults(m: MethodInfo): MethodValues {
  const v: MethodValues = {};
  for (const f of m.schema) if (f.kind !== 'fixed' && f.ui !== 'none') v[f.key] = structuredClone(f.default);
  return { ...v, ...(FORM_START[m.peftType] ?? {}) };
}

export interface BuiltinDataset {
  id: string;
  name: string;
  task: TaskType;
  description: string;
  rows: { train: number; validation?: number };
}

/**
 * The model a project remembers (persisted; see persist.ts): the built-in one, a Hub repo at a revision (read
 * from the browser cache when complete), or a local folder / files, which the browser can only hand back when
 * the person picks them again.
 */
export type ModelRef =
  /** id: another built-in model than sotu-gpt2 (sotu-t5). */
  | { kind: 'builtin'; id?: string }
  | { kind: 'hub'; repo: string; revision: string; endpoint: string }
  | { kind: 'local'; name: string; picker: 'folder' | 'files' };

/** The dataset a project remembers: a built-in one, or an upload kept in this browser (IndexedDB). */
export type DataRef = { kind: 'builtin'; id: string } | { kind: 'upload'; id: string; name: string };

/** An uploaded dataset kept in this browser, as the dataset list shows it. */
export interface StoredDatasetInfo {
  id: string;
  name: string;
  type: string;
  size: number;
  savedAt: number;
  mapping: ColumnMapping | null;
}

/** The browser's storage for this site: used and granted bytes; persistent: exempt from eviction. */
export interface StorageStatus {
  usage: number;
  quota: number;
  persistent: boolean | null;
}

/** Steps of loading a model: header first (inspecting), maybe a go-ahead (confirm), then the weights. */
export type LoadPhase = 'inspecting' | 'confirm' | 'downloading' | 'failed' | 'cancelled';

export interface LoadError {
  code: string;
  message: string;
  /** Network failure, timeout, 429 or 5xx: Retry may work (a download continues where it stopped). */
  retryable: boolean;
  /** The Hub repo page (gated or private repos). */
  link?: string;
}

export interface ModelState {
  /** 'ready': weights and tokenizer are in the worker and training can start. */
  status: Status;
  label: string;
  /** The model the tree describes: loaded, or inspected and downloading. */
  info?: ModelInfo;
  phase?: LoadPhase;
  inspection?: InspectionInfo;
  /** Numbers this load's progress events. */
  loadId?: number;
  progress?: DownloadProgress;
  error?: LoadError;
  /** Which step the error stopped: Retry inspects again or continues the download. */
  failedAt?: 'inspect' | 'download';
  /** What was shown before the current load; back in place when the new model's header cannot be read. */
  previous?: Omit<ModelState, 'previous'>;
}

export interface ProjectState {
  backendChoice: BackendChoice;
  backend: { status: Status; name?: BackendName; reason?: string; error?: string };

  model: ModelState;
  /** The model the project uses, as remembered across reloads (null: none yet). */
  modelRef: ModelRef | null;
  tree: TreeInfo | null;
  /** Training memory for the current model and settings, against the device's limits. */
  memory: MemoryReport | null;
  /** Models in the browser's download cache. persistent null: not known yet. */
  cache: { persistent: boolean | null; models: CachedModelInfo[]; error?: string };
  /** Storage used and granted for this site (models, datasets, settings); null: not known. */
  storage: StorageStatus | null;
  /** Why the training worker stopped, while it is down (null: running). */
  workerCrash: string | null;

  task: TaskType;
  /** The PEFT methods the engine implements, with their schemas (from the worker). */
  methods: MethodInfo[];
  method: PeftType;
  /** Each method's form values, kept when switching back and forth. */
  settings: Record<string, MethodValues>;
  targetText: TargetText;
  targets: { pending: boolean; result: TargetResult | null };

  builtinDatasets: BuiltinDataset[];
  dataSource: DataSource | null;
  /** What dataSource is, as remembered across reloads; null for an upload that could not be kept. */
  dataRef: DataRef | null;
  /** Uploaded datasets kept in this browser; error: why the last one could not be kept (or listed). */
  uploads: { list: StoredDatasetInfo[]; error?: string };
  /** Null: use the mapping the worker guessed. */
  mapping: ColumnMapping | null;
  validationSplit: number;
  /** Instruction / chat data: format, chat template, what the loss is computed on. */
  chat: ChatSettings;
  /** A Hub dataset read instead of dataSource (the Data panel's "From the Hub"); null: dataSource. */
  hubData: HubDataChoice | null;
  /** TOKEN_CLS: the tags in id order (null: the dataset's) and run_ner.py's label_all_tokens. */
  tokcls: { labelList: string[] | null; labelAllTokens: boolean };
  data: { status: Status; summary?: DataSummary; error?: string };

  limitBy: 'epochs' | 'maxSteps';
  args: TrainArgs;
  /** The learning rate was set by the person (a method switch then keeps it). */
  lrTouched: boolean;
  /** The training preset last applied, with the values it set; a field now different from them is "custom". */
  preset: AppliedPreset | null;
  /** A method switch set the learning rate to this method's PEFT example value (shown beside the field). */
  lrFromMethod: { method: PeftType; learningRate: number } | null;
}

export interface AppliedPreset extends TrainPreset {
  task: TaskType;
  method: PeftType;
}

/** The shared run defaults (src/engine/train/defaults.ts), the same the CLI's flags default to. */
export const DEFAULT_ARGS: TrainArgs = {
  learningRate: RUN_DEFAULTS.learningRate,
  epochs: RUN_DEFAULTS.epochs,
  maxSteps: RUN_DEFAULTS.maxSteps,
  batchSize: RUN_DEFAULTS.batchSize,
  gradientAccumulationSteps: RUN_DEFAULTS.gradientAccumulationSteps,
  warmupSteps: RUN_DEFAULTS.warmupSteps,
  scheduler: RUN_DEFAULTS.scheduler,
  weightDecay: RUN_DEFAULTS.weightDecay,
  maxGradNorm: RUN_DEFAULTS.maxGradNorm,
  evalSteps: RUN_DEFAULTS.evalSteps,
  seed: RUN_DEFAULTS.seed,
  maxLength: RUN_DEFAULTS.maxLength,
  gradientCheckpointing: 'auto',
  saveSteps: 0,
  saveTotalLimit: RUN_DEFAULTS.saveTotalLimit,
  metricForBestModel: 'eval_loss',
  greaterIsBetter: null,
  loadBestModelAtEnd: false,
  earlyStoppingPatience: null,
  // SEQ_2_SEQ_LM: greedy generation takes a tab about half a second a row on wasm; the loss still uses every row.
  generationEvalRows: 64,
  // SEQ_2_SEQ_LM: null = the max length.
  maxTargetLength: null,
};

export const DEFAULT_TARGET_TEXT: TargetText = { mode: 'list', target: 'c_attn', exclude: '', excludeRegex: false, layers: '', layersPattern: '' };

const initial: ProjectState = {
  backendChoice: 'auto',
  backend: { status: 'idle' },
  model: { status: 'idle', label: '' },
  modelRef: null,
  tree: null,
  memory: null,
  cache: { persistent: null, models: [] },
  storage: null,
  workerCrash: null,
  task: 'CAUSAL_LM',
  methods: [],
  method: 'LORA',
  settings: {},
  targetText: DEFAULT_TARGET_TEXT,
  targets: { pending: false, result: null },
  builtinDatasets: [],
  dataSource: null,
  dataRef: null,
  uploads: { list: [] },
  mapping: null,
  validationSplit: RUN_DEFAULTS.validationSplit,
  chat: { format: 'auto', template: 'auto', trainOn: 'responses' },
  hubData: null,
  tokcls: { labelList: null, labelAllTokens: false },
  data: { status: 'idle' },
  limitBy: 'maxSteps',
  args: DEFAULT_ARGS,
  lrTouched: false,
  preset: null,
  lrFromMethod: null,
};

export const useProject = create<ProjectState>()(() => initial);

/** The setup a new project starts with (what the person sets; worker reports are not part of it). */
export const PROJECT_DEFAULTS = {
  backendChoice: initial.backendChoice, modelRef: { kind: 'builtin' } as ModelRef, task: initial.task, method: initial.method,
  targetText: initial.targetText, dataRef: null as DataRef | null, mapping: null, validationSplit: initial.validationSplit,
  limitBy: initial.limitBy, args: initial.args, lrTouched: false, chat: initial.chat, hubData: null,
  preset: null, lrFromMethod: null,
} satisfies Partial<ProjectState>;

/** Every method's form back at its defaults. */
function defaultSettings(methods: MethodInfo[]): Record<string, MethodValues> {
  return Object.fromEntries(methods.map((m) => [m.peftType, formDefaults(m)]));
}

/** The data source a DataRef of a built-in dataset stands for. */
function builtinSource(ref: DataRef | null): DataSource | null {
  return ref?.kind === 'builtin' ? { kind: 'builtin', id: ref.id } : null;
}

/** Applies `f` to the model slice of load `loadId`: the one on show, or the previous one under a header read. */
function forLoad(s: ProjectState, loadId: number, f: (m: Omit<ModelState, 'previous'>) => Omit<ModelState, 'previous'>): Partial<ProjectState> {
  if (s.model.loadId === loadId && s.model.phase !== 'inspecting') return { model: f(s.model) };
  if (s.model.previous?.loadId === loadId) return { model: { ...s.model, previous: f(s.model.previous) } };
  return {};
}
const set = useProject.setState;
const get = useProject.getState;

export function methodInfoOf(s: Pick<ProjectState, 'methods' | 'method'>): MethodInfo | undefined {
  return s.methods.find((m) => m.peftType === s.method);
}

/** The run's optimizer steps: max steps, or the epochs over the loaded data's rows; null before data is loaded. */
export function runSteps(s: Pick<ProjectState, 'limitBy' | 'args' | 'data'>): number | null {
  if (s.limitBy === 'maxSteps') return s.args.maxSteps ?? null;
  return s.data.summary ? plannedSteps({ ...s.args, maxSteps: null }, s.data.summary.trainRows) : null;
}

/** The preset's fields the person changed after applying it ('targets' too), in the panel's order; [] without a preset. */
export function presetCustomFields(s: Pick<ProjectState, 'preset' | 'args' | 'limitBy' | 'targetText' | 'tree'>): (keyof PresetArgs | 'targets')[] {
  const p = s.preset;
  if (!p) return [];
  const out: (keyof PresetArgs | 'targets')[] = PRESET_FIELDS.filter((k) => (k === 'maxSteps' && s.limitBy !== 'maxSteps') || s.args[k] !== p.args[k]);
  if (p.targets === 'all-linear' && s.targetText.mode !== 'all-linear') out.push('targets');
  else if (p.targets && p.targets !== 'all-linear' && s.tree) {
    const want = presetTargetText(p.targets, s.tree, s.targetText);
    if (s.targetText.mode !== want.mode || s.targetText.target !== want.target || s.targetText.exclude || s.targetText.layers) out.push('targets');
  }
  return out;
}

/** The target text a role-based preset sets on this tree: its attention / MLP modules as the shortest PEFT list. */
function presetTargetText(t: Exclude<PresetTargets, 'all-linear'>, tree: TreeInfo, prev: TargetText): TargetText {
  return textForSelection(presetRoleSelection(t, tree.roles), tree.modules, prev);
}

/** The method settings the worker takes, or an error for text that is not a valid spec yet. */
export function peftSettings(s: ProjectState): { peft: PeftSettings; error?: string } {
  const info = methodInfoOf(s);
  const values: MethodValues = { ...(s.settings[s.method] ?? (info ? formDefaults(info) : {})) };
  // A field the run fills when empty (AdaLoRA's total_step): the run's steps, as far as they are known here.
  const steps = runSteps(s);
  for (const f of info?.schema ?? []) if (f.runSteps && values[f.key] == null) values[f.key] = steps;
  // Prompt methods have no target modules (virtual tokens instead).
  if (info?.prompt) return { peft: { ...values, peftType: s.method } as PeftSettings };
  const { spec, error } = textToSpec(s.targetText);
  return { peft: { ...values, ...spec, peftType: s.method } as PeftSettings, error };
}

/** Trainer arguments with only the chosen limit (epochs or max steps). */
export function trainArgs(s: ProjectState): TrainArgs {
  const a = { ...s.args };
  if (s.limitBy === 'epochs') delete a.maxSteps;
  else delete a.epochs;
  return a;
}

// --- named actions -------------------------------------------------------------------------------------------

/** The built-in dataset of `task` when the dataset in use is a built-in one of another task (else no change). */
function builtinDataFor(s: ProjectState, task: TaskType): Partial<ProjectState> {
  const ds = s.dataSource;
  const fits = ds?.kind !== 'builtin' || s.builtinDatasets.find((d) => d.id === ds.id)?.task === task;
  const other = s.builtinDatasets.find((d) => d.task === task);
  return fits || !other ? {} : { dataSource: { kind: 'builtin', id: other.id } as DataSource, dataRef: { kind: 'builtin', id: other.id } as DataRef };
}

export const projectActions = {
  setBackendChoice: (backendChoice: BackendChoice) => set({ backendChoice }),
  backendStarting: () => set({ backend: { status: 'loading' } }),
  backendReady: (name: BackendName, reason: string, methods: MethodInfo[]) =>
    set((s) => ({
      backend: { status: 'ready', name, reason },
      methods,
      // Every method starts from its schema's defaults; values already set are kept.
      settings: Object.fromEntries(methods.map((m) => [m.peftType, { ...formDefaults(m), ...(s.settings[m.peftType] ?? {}) }])),
    })),
  backendFailed: (error: string) => set({ backend: { status: 'error', error } }),

  /**
   * A new load begins with its header. The previous model stays on show (and, in the worker, loaded or still
   * downloading) until the new header has been read; if that fails, it is back in place with the error.
   */
  modelLoading: (label: string) =>
    set((s) => {
      // A header read that is being replaced never became the model: keep what was before it.
      const { previous, ...now } = s.model;
      const prev = s.model.phase === 'inspecting' ? previous : now;
      return { model: { status: 'loading', phase: 'inspecting', label, info: prev?.info, inspection: prev?.inspection, previous: prev } };
    }),
  /** The header could not be read (or the load was cancelled): the previous model, with the error. */
  inspectFailed: (error: LoadError) =>
    set((s) => {
      const prev = s.model.previous ?? { status: 'idle' as Status, label: '' };
      return { model: { ...prev, status: prev.status === 'idle' ? 'error' : prev.status, error, failedAt: 'inspect', previous: undefined } };
    }),
  /** The header is read: the tree, targets and memory estimate now describe this model; its weights come next. */
  modelInspected: (r: Extract<WorkerEvent, { type: 'inspected' }>, ref?: ModelRef | null) => {
    const info = r.info;
    // Start from PEFT's default targets for this architecture (what target_modules=None would pick).
    const targetText: TargetText = { mode: 'list', target: info.defaultTargets.join(', '), exclude: '', excludeRegex: false, layers: '', layersPattern: '' };
    set({
      model: { status: 'loading', phase: r.memory.blocking ? 'confirm' : 'downloading', label: info.name, info, inspection: r.inspection, loadId: r.loadId },
      task: info.task,
      // A model that cannot do the task in use (T5 after GPT-2's CAUSAL_LM) starts on a built-in dataset of its task.
      ...(info.task !== get().task && !(info.tasks ?? []).some((t) => t.task === get().task) ? { mapping: null, ...builtinDataFor(get(), info.task) } : {}),
      targetText,
      memory: r.memory,
      ...(ref !== undefined ? { modelRef: ref } : {}),
    });
  },
  // Download events name their load: it may be the model on show, or the previous one while a new header is read.
  downloadStarted: (loadId: number) =>
    set((s) => forLoad(s, loadId, (m) => ({ ...m, status: 'loading', phase: 'downloading', error: undefined, failedAt: undefined }))),
  downloadProgress: (loadId: number, progress: DownloadProgress) =>
    set((s) => forLoad(s, loadId, (m) => (m.phase === 'downloading' ? { ...m, progress } : m))),
  /** Weights and tokenizer are in: training can start. The targets picked meanwhile stay. */
  modelLoaded: (loadId: number, info: ModelInfo) =>
    set((s) =>
      forLoad(s, loadId, (m) => ({
        status: 'ready', label: info.name, info, inspection: m.inspection, loadId, progress: m.progress,
        // An error about another repo (its header failed while this one downloaded) stays on show.
        ...(m.failedAt === 'inspect' ? { error: m.error, failedAt: m.failedAt } : {}),
      })),
    ),
  downloadFailed: (loadId: number, error: LoadError) =>
    set((s) => forLoad(s, loadId, (m) => ({ ...m, status: 'error', phase: error.code === 'CANCELLED' ? 'cancelled' : 'failed', error, failedAt: 'download' }))),
  /** A problem outside loading (e.g. reading the tree); the model stays as it is. */
  modelProblem: (error: LoadError) => set((s) => ({ model: { ...s.model, error } })),
  memoryEstimated: (memory: MemoryReport | null) => set({ memory }),
  cacheListed: (persistent: boolean, models: CachedModelInfo[]) => set({ cache: { persistent, models } }),
  cacheFailed: (error: string) => set((s) => ({ cache: { ...s.cache, error } })),
  treeLoaded: (tree: TreeInfo) => set({ tree }),

  setTask: (task: TaskType) => set((s) => ({ task, mapping: null, ...builtinDataFor(s, task) })),
  /** Another method: its own settings come back; the learning rate follows PEFT's example unless the person set one. */
  setMethod: (method: PeftType) =>
    set((s) => {
      const info = s.methods.find((m) => m.peftType === method);
      if (!info || s.lrTouched) return { method, lrFromMethod: null };
      // An applied preset whose learning rate was kept gives the new method its own preset rate.
      const p = s.preset && s.args.learningRate === s.preset.args.learningRate ? presetFor(s.preset.id, s.preset.task, method, info.learningRate) : null;
      const learningRate = p ? p.args.learningRate : info.learningRate;
      return {
        method,
        args: { ...s.args, learningRate },
        ...(p && s.preset ? { preset: { ...s.preset, method, args: { ...s.preset.args, learningRate } } } : {}),
        lrFromMethod: learningRate !== s.args.learningRate ? { method, learningRate } : null,
      };
    }),
  updateSettings: (p: MethodValues) => set((s) => ({ settings: { ...s.settings, [s.method]: { ...(s.settings[s.method] ?? {}), ...p } } })),
  setTargetText: (p: Partial<TargetText>) => set((s) => ({ targetText: { ...s.targetText, ...p } })),
  /** A tree click: add or remove modules from what the text matches now, and write the new text. */
  toggleTargets: (names: string[], on: boolean) => {
    const s = get();
    if (!s.tree) return;
    const sel = new Set(s.targets.result?.matched ?? []);
    for (const n of names) (on ? sel.add(n) : sel.delete(n));
    set({ targetText: textForSelection(sel, s.tree.modules, s.targetText) });
  },
  /** A quick pick: exactly these modules. */
  selectTargets: (names: string[]) => {
    const s = get();
    if (s.tree) set({ targetText: textForSelection(names, s.tree.modules, s.targetText) });
  },
  targetsPending: () => set((s) => ({ targets: { ...s.targets, pending: true } })),
  targetsResolved: (result: TargetResult) => set({ targets: { pending: false, result } }),

  /** The built-in list; with no dataset chosen (or remembered), the first one for the task is. */
  setBuiltinDatasets: (builtinDatasets: BuiltinDataset[]) => {
    set({ builtinDatasets });
    const s = get();
    if (!s.dataSource && !s.dataRef) projectActions.useDefaultDataset();
  },
  /** The first built-in dataset for the task (none while the list is not known). */
  useDefaultDataset: () =>
    set((s) => {
      const d = s.builtinDatasets.find((x) => x.task === s.task);
      return d ? { dataSource: { kind: 'builtin', id: d.id }, dataRef: { kind: 'builtin', id: d.id }, mapping: null } : { dataSource: null, dataRef: null, mapping: null };
    }),
  /**
   * A dataset: built-in ones remember themselves; an upload remembers the stored copy `ref` (null while it is
   * being stored, or when it could not be), and comes with the mapping chosen for it before.
   */
  setDataSource: (dataSource: DataSource, ref: DataRef | null = null, mapping: ColumnMapping | null = null) =>
    set({ dataSource, dataRef: dataSource.kind === 'builtin' ? { kind: 'builtin', id: dataSource.id } : ref, mapping, hubData: null }),
  /** The upload on show is now kept in the browser as `ref`. */
  uploadStored: (file: File, ref: DataRef) => set((s) => (s.dataSource?.kind === 'file' && s.dataSource.file === file ? { dataRef: ref } : {})),
  uploadsListed: (list: StoredDatasetInfo[]) => set((s) => ({ uploads: { list, error: s.uploads.error } })),
  uploadsFailed: (error: string | undefined) => set((s) => ({ uploads: { ...s.uploads, error } })),
  /** A stored upload was deleted: the one on show stays for this session, no longer remembered. */
  uploadDeleted: (id: string) =>
    set((s) => ({
      uploads: { ...s.uploads, list: s.uploads.list.filter((u) => u.id !== id) },
      ...(s.dataRef?.kind === 'upload' && s.dataRef.id === id ? { dataRef: null } : {}),
    })),
  setMapping: (mapping: ColumnMapping) => set({ mapping }),
  setValidationSplit: (validationSplit: number) => set({ validationSplit }),
  setChat: (chat: Partial<ChatSettings>) => set((s) => ({ chat: { ...s.chat, ...chat } })),
  setTokcls: (t: Partial<ProjectState['tokcls']>) => set((s) => ({ tokcls: { ...s.tokcls, ...t } })),
  setHubData: (hubData: HubDataChoice | null) => set({ hubData, ...(hubData ? { mapping: null } : {}) }),
  dataLoading: () => set((s) => ({ data: { ...s.data, status: 'loading', error: undefined } })),
  dataLoaded: (summary: DataSummary) => set({ data: { status: 'ready', summary } }),
  /** The worker keeps the last good data, so its summary stays on show under the error. */
  dataFailed: (error: string) => set((s) => ({ data: { status: 'error', error, summary: s.data.summary } })),

  setLimitBy: (limitBy: 'epochs' | 'maxSteps') => set({ limitBy }),
  updateArgs: (p: Partial<TrainArgs>) =>
    set((s) => ({ args: { ...s.args, ...p }, lrTouched: s.lrTouched || 'learningRate' in p, lrFromMethod: 'learningRate' in p ? null : s.lrFromMethod })),
  /**
   * A training preset for the current task and method: learning rate, max steps, batch, length, warmup, eval
   * interval, schedule and (for module-adapting methods) target_modules. Every field stays editable.
   */
  applyPreset: (id: PresetId) =>
    set((s) => {
      const p = presetFor(id, s.task, s.method, methodInfoOf(s)?.learningRate ?? DEFAULT_ARGS.learningRate);
      const targetText: TargetText = p.targets === 'all-linear'
        ? { ...s.targetText, mode: 'all-linear', target: '', exclude: '', layers: '', layersPattern: '' }
        : p.targets && s.tree ? presetTargetText(p.targets, s.tree, s.targetText) : s.targetText;
      return { args: { ...s.args, ...p.args }, limitBy: 'maxSteps', targetText, preset: { ...p, task: s.task, method: s.method }, lrTouched: false, lrFromMethod: null };
    }),

  storageEstimated: (storage: StorageStatus | null) => set({ storage }),

  // --- whole projects ---------------------------------------------------------------------------------------

  /** Setup values read back from storage (persist.ts), before the worker is asked for anything. */
  restore: (p: Partial<ProjectState>) => set((s) => ({ ...p, dataSource: p.dataRef !== undefined ? builtinSource(p.dataRef) : s.dataSource })),
  /** Reset to defaults: training and every method's settings; model, targets, task, method and data stay. */
  resetSettings: () =>
    set((s) => {
      const info = methodInfoOf(s);
      return {
        settings: defaultSettings(s.methods), limitBy: initial.limitBy, lrTouched: false,
        args: { ...DEFAULT_ARGS, learningRate: info?.learningRate ?? DEFAULT_ARGS.learningRate },
        preset: null, lrFromMethod: null,
      };
    }),
  /** New project: every setup value at its default (the built-in model is loaded by the caller). */
  newProject: () =>
    set((s) => {
      const d = s.builtinDatasets.find((x) => x.task === initial.task);
      const dataRef: DataRef | null = d ? { kind: 'builtin', id: d.id } : null;
      return { ...PROJECT_DEFAULTS, settings: defaultSettings(s.methods), dataRef, dataSource: builtinSource(dataRef), uploads: { list: s.uploads.list } };
    }),

  /** The worker crashed: everything it reported is gone with it. */
  workerCrashed: (reason: string) => set({ workerCrash: reason }),
  /** A new worker: setup stays; what the old worker reported is cleared until the new one reports again. */
  workerRestarted: () =>
    set((s) => ({
      workerCrash: null, backend: { status: 'idle' }, model: { status: 'idle', label: s.model.label }, tree: null, memory: null,
      targets: { pending: false, result: null }, data: { status: 'idle' },
    })),
};
