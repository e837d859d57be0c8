/**
 * The Export panel's "beyond the tab" jobs, run in the worker on the adapter it holds: the merged model written
 * tensor by tensor into a folder (one the user picked, or OPFS for the page to download file by file), the GGUF
 * adapter with its Modelfile, and the Python project. worker.ts routes the commands here.
 */
import { COPIED_MODEL_FILES, writeMergedModel } from '../engine/adapter/merge';
import { loraToGguf } from '../engine/adapter/gguf';
import { ollamaModelfile } from '../engine/adapter/modelfile';
import { EngineError } from '../engine/errors';
import { pythonProject } from '../engine/export/python-project';
import type { FloatDType } from '../engine/io/float-encode';
import type { FileSource } from '../engine/io/model-source';
import type { OpenFile } from '../engine/io/safetensors-stream';
import { resolveArchitecture } from '../engine/models';
import type { PeftModel } from '../engine/peft/model';
import { withRunSteps } from '../engine/peft/registry';
import { DEFAULT_ARGS, type TrainingArgs } from '../engine/session';
import { plannedSteps } from '../engine/train/schedule';
import { builtinIndex } from './data-loader';
import { toEngineConfig } from './peft-settings';
import type { DataRequest, TrainArgs, TaskType } from './protocol';
import type { PeftSettings } from '../engine/peft/registry';

/** Where merged models wait in OPFS until the page has downloaded them. */
export const MERGE_FOLDER = 'peft-studio-merged';

/** A folder (picked by the user, or in OPFS) as the merge's file sink: each file through its own writable stream. */
export function folderSink(dir: FileSystemDirectoryHandle): OpenFile {
  return async (name) => {
    const fh = await dir.getFileHandle(name, { create: true });
    const w = await fh.createWritable();
    return { write: (chunk) => w.write(chunk as Uint8Array<ArrayBuffer>), close: () => w.close() };
  };
}

/** The OPFS folder for one merge (older merges are removed first: they were downloaded or abandoned). */
export async function opfsMergeFolder(name: string): Promise<FileSystemDirectoryHandle> {
  const root = await navigator.storage.getDirectory();
  await root.removeEntry(MERGE_FOLDER, { recursive: true }).catch(() => undefined);
  const top = await root.getDirectoryHandle(MERGE_FOLDER, { create: true });
  return top.getDirectoryHandle(name, { create: true });
}

/** The model source's tokenizer and generation files, copied beside the merged weights. */
export async function copiedFiles(source: FileSource | null): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  if (!source) return out;
  for (const f of COPIED_MODEL_FILES) {
    const b = await source.read(f).catch(() => null);
    if (b) out[f] = b;
  }
  return out;
}

export interface MergeJob {
  peft: PeftModel;
  dtype: FloatDType;
  maxShardSize: number;
  baseName: string;
  source: FileSource | null;
  open: OpenFile;
  onTensor?: (name: string, done: number, total: number) => void;
}

/** Writes the merged folder; resolves to the files written and their tensor bytes. */
export async function runMerge(j: MergeJob): Promise<{ files: string[]; totalBytes: number }> {
  const res = await writeMergedModel(j.peft, {
    dtype: j.dtype, maxShardSize: j.maxShardSize, open: j.open, baseModelName: j.baseName, copy: await copiedFiles(j.source), onTensor: j.onTensor,
  });
  return { files: res.written, totalBytes: res.totalSize };
}

/** adapter.gguf + Modelfile for the adapter. */
export async function ggufFiles(peft: PeftModel, o: { outtype: 'F32' | 'F16'; source: FileSource | null; baseName: string; ollamaFrom?: string }): Promise<Record<string, string | Uint8Array>> {
  const gguf = await loraToGguf(peft, { outtype: o.outtype, name: `${o.baseName.split('/').pop()}-adapter` });
  const tc = o.source ? await o.source.read('tokenizer_config.json').catch(() => null) : null;
  let tokenizerConfig: Record<string, unknown> | null = null;
  try {
    tokenizerConfig = tc ? (JSON.parse(new TextDecoder().decode(tc)) as Record<string, unknown>) : null;
  } catch {
    tokenizerConfig = null; // the Modelfile then says it found no chat template
  }
  const from = o.ollamaFrom || `./${o.baseName.split('/').pop()}.gguf`;
  return { 'adapter.gguf': gguf, Modelfile: ollamaModelfile({ from, tokenizerConfig }) };
}

/** The studio's settings as the engine's TrainingArgs (checkpointing: on only when asked for; a GPU box differs). */
export function trainingArgsOf(a: TrainArgs): TrainingArgs {
  return {
    ...DEFAULT_ARGS, ...a, epochs: a.epochs ?? DEFAULT_ARGS.epochs, maxSteps: a.maxSteps ?? null, gradientCheckpointing: a.gradientCheckpointing === 'on',
  };
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new EngineError('BAD_DATA', `Could not download ${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

export interface PythonJob {
  task: TaskType;
  peft: PeftSettings;
  args: TrainArgs;
  data: DataRequest;
  /** The loaded data's label names (SEQ_CLS) and training rows (for AdaLoRA's total_step). */
  labels: string[];
  trainRows: number;
  chat: boolean;
  config: Record<string, unknown>;
  baseName: string;
  revision: string | null;
  baseUrl: string;
}

/** The Python project's files for the project's current settings and data. */
export async function pythonFiles(j: PythonJob): Promise<Record<string, string | Uint8Array>> {
  if (j.chat) {
    throw new EngineError('NOT_EXPORTABLE', 'The Python project does not render instruction / chat data with a chat template yet; export a dataset of text, text + label or prompt + response rows.');
  }
  const args = trainingArgsOf(j.args);
  const peft = toEngineConfig(withRunSteps(j.peft, plannedSteps(args, j.trainRows)), j.task, j.baseName);
  const arch = resolveArchitecture(j.config, j.task);
  let train: { name: string; bytes: Uint8Array };
  let validation: { name: string; bytes: Uint8Array } | null = null;
  let columns: { textColumn?: string; labelColumn?: string; promptColumn?: string; responseColumn?: string } = {};
  const m = j.data.mapping;
  if (j.data.source.kind === 'builtin') {
    const id = j.data.source.id;
    const entry = (await builtinIndex(j.baseUrl)).find((d) => d.id === id);
    if (!entry) throw new EngineError('BAD_DATA', `There is no built-in dataset "${id}".`);
    train = { name: entry.files.train, bytes: await fetchBytes(new URL(`datasets/${entry.files.train}`, j.baseUrl).href) };
    if (entry.files.validation) validation = { name: entry.files.validation, bytes: await fetchBytes(new URL(`datasets/${entry.files.validation}`, j.baseUrl).href) };
    columns = { textColumn: entry.textField, labelColumn: entry.labelField };
  } else {
    train = { name: j.data.source.file.name, bytes: new Uint8Array(await j.data.source.file.arrayBuffer()) };
  }
  if (m?.kind === 'text') columns = { ...columns, textColumn: m.text };
  if (m?.kind === 'text-label') columns = { ...columns, textColumn: m.text, labelColumn: m.label };
  if (m?.kind === 'prompt-response') columns = { ...columns, promptColumn: m.prompt, responseColumn: m.response };
  return pythonProject({
    model: j.baseName, revision: j.revision, modelType: arch.config.modelType, task: j.task, peft, args,
    data: { train, validation, validationSplit: validation ? null : j.data.validationSplit || null, ...columns },
    labels: j.task === 'SEQ_CLS' && j.labels.length ? j.labels : null, numLabels: j.task === 'SEQ_CLS' ? arch.config.numLabels : null,
  });
}
