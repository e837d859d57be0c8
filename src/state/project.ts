/**
 * The project store: what the person set up (model, task, method, targets, data, training arguments, backend)
 * and what the worker reported about it (model info, module tree, target match, data summary).
 * Changes are named actions; src/state/sync.ts turns setup changes into worker requests.
 */
import { create } from 'zustand';
import type { ColumnMapping } from '../engine/train/data-parse';
import type {
  BackendChoice, BackendName, DataSource, DataSummary, LoraSettings, ModelInfo, PeftSettings, PromptTuningSettings,
  TargetResult, TaskType, TrainArgs, TreeInfo,
} from '../worker/protocol';
import { textForSelection, textToSpec, type TargetText } from './targets-text';

export type LoraForm = Omit<LoraSettings, 'method' | 'targetModules' | 'excludeModules' | 'layersToTransform' | 'layersPattern'>;
export type PromptForm = Omit<PromptTuningSettings, 'method'>;
export type Status = 'idle' | 'loading' | 'ready' | 'error';

export interface BuiltinDataset {
  id: string;
  name: string;
  task: TaskType;
  description: string;
  rows: { train: number; validation?: number };
}

export interface ProjectState {
  backendChoice: BackendChoice;
  backend: { status: Status; name?: BackendName; reason?: string; error?: string };

  model: { status: Status; label: string; info?: ModelInfo; error?: string; previousLabel?: string };
  tree: TreeInfo | null;

  task: TaskType;
  method: 'LORA' | 'PROMPT_TUNING';
  lora: LoraForm;
  targetText: TargetText;
  prompt: PromptForm;
  targets: { pending: boolean; result: TargetResult | null };

  builtinDatasets: BuiltinDataset[];
  dataSource: DataSource | null;
  /** Null: use the mapping the worker guessed. */
  mapping: ColumnMapping | null;
  validationSplit: number;
  data: { status: Status; summary?: DataSummary; error?: string };

  limitBy: 'epochs' | 'maxSteps';
  args: TrainArgs;
}

export const DEFAULT_ARGS: TrainArgs = {
  learningRate: 2e-4,
  epochs: 1,
  maxSteps: 60,
  batchSize: 8,
  gradientAccumulationSteps: 1,
  warmupSteps: 5,
  scheduler: 'linear',
  weightDecay: 0,
  maxGradNorm: 1,
  evalSteps: 10,
  seed: 42,
  maxLength: 128,
};

const initial: ProjectState = {
  backendChoice: 'auto',
  backend: { status: 'idle' },
  model: { status: 'idle', label: '' },
  tree: null,
  task: 'CAUSAL_LM',
  method: 'LORA',
  // PEFT's defaults except alpha = 2r (common practice) and a little dropout.
  lora: { r: 8, loraAlpha: 16, loraDropout: 0.05, bias: 'none', useRslora: false, initLoraWeights: true },
  targetText: { mode: 'list', target: 'c_attn', exclude: '', excludeRegex: false, layers: '', layersPattern: '' },
  prompt: { numVirtualTokens: 8, promptTuningInit: 'RANDOM', promptTuningInitText: '' },
  targets: { pending: false, result: null },
  builtinDatasets: [],
  dataSource: null,
  mapping: null,
  validationSplit: 0.1,
  data: { status: 'idle' },
  limitBy: 'maxSteps',
  args: DEFAULT_ARGS,
};

export const useProject = create<ProjectState>()(() => initial);
const set = useProject.setState;
const get = useProject.getState;

/** The method settings the worker takes, or an error for text that is not a valid spec yet. */
export function peftSettings(s: ProjectState): { peft: PeftSettings; error?: string } {
  if (s.method === 'PROMPT_TUNING') return { peft: { method: 'PROMPT_TUNING', ...s.prompt } };
  const { spec, error } = textToSpec(s.targetText);
  return { peft: { method: 'LORA', ...s.lora, ...spec }, error };
}

/** Trainer arguments with only the chosen limit (epochs or max steps). */
export function trainArgs(s: ProjectState): TrainArgs {
  const a = { ...s.args };
  if (s.limitBy === 'epochs') delete a.maxSteps;
  else delete a.epochs;
  return a;
}

// --- named actions -------------------------------------------------------------------------------------------

export const projectActions = {
  setBackendChoice: (backendChoice: BackendChoice) => set({ backendChoice }),
  backendStarting: () => set({ backend: { status: 'loading' } }),
  backendReady: (name: BackendName, reason: string) => set({ backend: { status: 'ready', name, reason } }),
  backendFailed: (error: string) => set({ backend: { status: 'error', error } }),

  /** The previous model stays loaded (and shown) until the new one has loaded completely. */
  modelLoading: (label: string) => set((s) => ({ model: { status: 'loading', label, info: s.model.info, previousLabel: s.model.info ? s.model.label : undefined } })),
  modelLoaded: (info: ModelInfo) => {
    const task = info.task;
    // Start from PEFT's default targets for this architecture (what target_modules=None would pick).
    const targetText: TargetText = { mode: 'list', target: info.defaultTargets.join(', '), exclude: '', excludeRegex: false, layers: '', layersPattern: '' };
    set({ model: { status: 'ready', label: info.name, info }, task, targetText });
  },
  modelFailed: (error: string) =>
    set((s) => ({ model: { status: s.model.info ? 'ready' : 'error', label: s.model.previousLabel ?? s.model.label, info: s.model.info, error } })),
  treeLoaded: (tree: TreeInfo) => set({ tree }),

  setTask: (task: TaskType) =>
    set((s) => {
      const ds = s.dataSource;
      const fits = ds?.kind !== 'builtin' || s.builtinDatasets.find((d) => d.id === ds.id)?.task === task;
      const other = s.builtinDatasets.find((d) => d.task === task);
      return { task, mapping: null, ...(fits || !other ? {} : { dataSource: { kind: 'builtin', id: other.id } as DataSource, mapping: null }) };
    }),
  setMethod: (method: 'LORA' | 'PROMPT_TUNING') =>
    set((s) => ({ method, args: { ...s.args, learningRate: method === 'PROMPT_TUNING' ? 3e-2 : 2e-4 } })),
  updateLora: (p: Partial<LoraForm>) => set((s) => ({ lora: { ...s.lora, ...p } })),
  updatePrompt: (p: Partial<PromptForm>) => set((s) => ({ prompt: { ...s.prompt, ...p } })),
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

  setBuiltinDatasets: (builtinDatasets: BuiltinDataset[]) => {
    set({ builtinDatasets });
    const s = get();
    if (!s.dataSource) {
      const d = builtinDatasets.find((x) => x.task === s.task);
      if (d) set({ dataSource: { kind: 'builtin', id: d.id } });
    }
  },
  setDataSource: (dataSource: DataSource) => set({ dataSource, mapping: null }),
  setMapping: (mapping: ColumnMapping) => set({ mapping }),
  setValidationSplit: (validationSplit: number) => set({ validationSplit }),
  dataLoading: () => set((s) => ({ data: { ...s.data, status: 'loading', error: undefined } })),
  dataLoaded: (summary: DataSummary) => set({ data: { status: 'ready', summary } }),
  /** The worker keeps the last good data, so its summary stays on show under the error. */
  dataFailed: (error: string) => set((s) => ({ data: { status: 'error', error, summary: s.data.summary } })),

  setLimitBy: (limitBy: 'epochs' | 'maxSteps') => set({ limitBy }),
  updateArgs: (p: Partial<TrainArgs>) => set((s) => ({ args: { ...s.args, ...p } })),
};
