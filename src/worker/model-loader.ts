/**
 * The worker's side of model loading, on the engine's one inspector and loader (src/engine/io, docs/hub.md):
 * a protocol ModelSource becomes a FileSource (the built-in folder URL, picked or dropped files, a directory
 * handle, or a Hub repo), `inspectModel` reads config.json and the safetensors headers first (the tree, counts
 * and memory estimate are shown before any weight moves), then `downloadModel` streams the weights into the
 * browser cache (OPFS) with progress, cancel and resume. Errors keep the engine's codes and messages.
 */
import { HubClient, parseRepoId, urlSource, type HubSource } from '../engine/io/hub';
import { downloadModel, type DownloadProgress } from '../engine/io/download';
import { inspectModel, type ModelInspection } from '../engine/io/inspect';
import { LocalFilesSource, type DirectoryHandleLike, type FileSource } from '../engine/io/model-source';
import { openBrowserCache, storageEstimate } from '../engine/io/opfs-cache';
import type { FolderCache } from '../engine/io/cache';
import type { LoadedTensor } from '../engine/io/safetensors';
import { autoCheckpointing, browserDeviceMemory, checkFits, estimateForConfig, gpuLimits, type DeviceLimits } from '../engine/memory';
import { resolveArchitecture } from '../engine/models';
import { TASK_TYPES } from '../engine/models/types';
import { loadTokenizer, type Tokenizer } from '../engine/tokenizer';
import type { BackendName, CheckpointingChoice, InspectionInfo, MemoryReport, ModelInfo, ModelSource, TaskType } from './protocol';

export interface LoadedModel {
  name: string;
  /** adapter_config.json's base_model_name_or_path: the Hub repo id, the folder name, or the built-in's name. */
  baseName: string;
  revision: string | null;
  config: Record<string, unknown>;
  weights: Map<string, LoadedTensor>;
  tokenizer: Tokenizer | null;
  files: string[];
  weightBytes: number;
}

/** A model whose header has been read: enough for the tree, the targets and the memory estimate. */
export interface InspectedModel {
  source: FileSource;
  inspection: ModelInspection;
  name: string;
  baseName: string;
  revision: string | null;
  config: Record<string, unknown>;
  repoUrl?: string;
}

// --- cache --------------------------------------------------------------------------------------------------

let browserCache: Promise<{ cache: FolderCache; persistent: boolean }> | null = null;

/** The OPFS cache, opened once per worker (memory-backed, `persistent: false`, where OPFS is unavailable). */
export function modelCache(): Promise<{ cache: FolderCache; persistent: boolean }> {
  browserCache ??= openBrowserCache();
  return browserCache;
}

// --- sources ------------------------------------------------------------------------------------------------

/** The engine FileSource for a protocol source; throws BAD_ARGUMENT for a malformed repo id or Hub URL. */
export async function sourceFor(s: ModelSource, base: string): Promise<{ source: FileSource; name: string; repoUrl?: string }> {
  switch (s.kind) {
    case 'url':
      return { source: urlSource(new URL(s.url, base).href, s.name), name: s.name };
    case 'files': {
      const source = new LocalFilesSource(s.files);
      return { source, name: source.id };
    }
    case 'folder': {
      const source = await LocalFilesSource.fromDirectoryHandle(s.handle as unknown as DirectoryHandleLike);
      return { source, name: source.id };
    }
    case 'hub': {
      const ref = parseRepoId(s.repoId);
      if (s.revision?.trim()) ref.revision = s.revision.trim();
      const client = new HubClient({ endpoint: s.endpoint, token: s.token });
      const source: HubSource = client.source(ref);
      return { source, name: ref.revision === 'main' ? ref.repo : `${ref.repo}@${ref.revision}`, repoUrl: client.repoUrl(ref.repo) };
    }
  }
}

/** Reads the header (config.json, safetensors headers, or a complete cached snapshot) of a source. */
export async function inspectSource(s: ModelSource, base: string, signal: AbortSignal): Promise<InspectedModel> {
  const { source, name, repoUrl } = await sourceFor(s, base);
  const { cache } = await modelCache();
  const inspection = await inspectModel(source, { cache: source.cacheKey ? cache : null, signal });
  return {
    source, inspection, name, baseName: source.id, revision: hubRevision(source.revision), config: inspection.config, repoUrl,
  };
}

/** PEFT writes `revision: null` unless one was chosen; "main" is the default branch, so it stays null. */
function hubRevision(rev: string | null): string | null {
  return rev && rev !== 'main' ? rev : null;
}

/** Downloads (or reads from the cache) an inspected model, then builds its tokenizer. */
export async function downloadInspected(m: InspectedModel, signal: AbortSignal, onProgress: (p: DownloadProgress) => void): Promise<LoadedModel> {
  const { cache } = await modelCache();
  const r = await downloadModel(m.source, { cache: m.source.cacheKey ? cache : null, inspection: m.inspection, signal, onProgress });
  const tokenizer = r.tokenizerJson
    ? await loadTokenizer({ tokenizerJson: r.tokenizerJson, ...(r.tokenizerConfig ? { tokenizerConfig: r.tokenizerConfig } : {}) })
    : null;
  return {
    name: m.name, baseName: r.id, revision: hubRevision(r.revision), config: r.config, weights: r.weights, tokenizer,
    files: r.files, weightBytes: r.weightBytes,
  };
}

// --- summaries for the page ---------------------------------------------------------------------------------

/** The tasks the engine builds this architecture for (resolveArchitecture accepts), with each one's class. */
export function modelTasks(config: Record<string, unknown>): { task: TaskType; className: string }[] {
  return TASK_TYPES.flatMap((t) => {
    try {
      return [{ task: t, className: resolveArchitecture(config, t).className }];
    } catch {
      return [];
    }
  });
}

export function modelInfo(m: InspectedModel, hasTokenizer = m.inspection.tokenizerFiles.includes('tokenizer.json')): ModelInfo {
  const i = m.inspection;
  const r = resolveArchitecture(m.config);
  return {
    name: m.name, modelType: r.config.modelType, className: r.className, task: r.task, tasks: modelTasks(m.config), hasTokenizer,
    weightBytes: i.weightFiles.reduce((a, w) => a + w.size, 0), files: i.files.map((f) => f.name),
    defaultTargets: r.spec.peftDefaults(r.config).lora ?? [], sourceKind: i.fromCache ? 'cache' : m.source.kind, revision: m.source.revision,
    ...(m.repoUrl ? { repoUrl: m.repoUrl } : {}),
  };
}

export function inspectionInfo(i: ModelInspection): InspectionInfo {
  return {
    label: i.label, totalParams: i.totalParams, dtypes: { ...i.dtypes } as Record<string, number>, files: i.files.map((f) => ({ name: f.name, size: f.size })),
    weightFiles: i.weightFiles.length, downloadBytes: i.downloadBytes, f32Bytes: i.f32Bytes, bytesRead: i.bytesRead,
    fromCache: i.fromCache, commit: i.commit, notes: i.notes,
  };
}

// --- memory -------------------------------------------------------------------------------------------------

let gpu: Promise<Awaited<ReturnType<typeof gpuLimits>>> | null = null;

/** Training memory for `config` against this device's limits (WebGPU buffers, RAM, wasm heap, free storage). */
export async function memoryReport(o: {
  config: Record<string, unknown>;
  task: TaskType;
  totalParams: number;
  trainable: number;
  largestParamElements?: number;
  batch: number;
  seqLen: number;
  backend: BackendName | null;
  /** Set before a download: compared with the free storage. */
  downloadBytes?: number;
  checkpointing?: CheckpointingChoice;
}): Promise<MemoryReport> {
  const choice = o.checkpointing ?? 'auto';
  const estimateWith = (gradientCheckpointing: boolean) => estimateForConfig(o.config, {
    totalParams: o.totalParams, trainableParams: o.trainable, batch: o.batch, seqLen: o.seqLen,
    largestParamElements: o.largestParamElements, task: o.task, gradientCheckpointing,
  });
  const limits: DeviceLimits = {};
  if (o.backend) limits.backend = o.backend;
  if (o.backend === 'webgpu') {
    gpu ??= gpuLimits();
    const g = await gpu;
    if (g) Object.assign(limits, g);
  }
  const dm = browserDeviceMemory();
  if (dm) limits.deviceMemoryBytes = dm;
  if (o.downloadBytes !== undefined) {
    const st = await storageEstimate();
    if (st) limits.storageAvailableBytes = st.available;
    limits.downloadBytes = o.downloadBytes;
  }
  const plain = estimateWith(false);
  const on = choice === 'on' || (choice === 'auto' && autoCheckpointing(plain, limits));
  const estimate = on ? estimateWith(true) : plain;
  const warnings = checkFits(estimate, limits);
  const blocking = warnings.some((w) => w.level === 'error') || (!!dm && estimate.totalBytes > dm);
  return { estimate, warnings, limits, batch: o.batch, seqLen: o.seqLen, trainable: o.trainable, checkpointing: { choice, on }, blocking };
}
