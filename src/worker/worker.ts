/// <reference lib="webworker" />
/**
 * The training worker: owns the engine (tfjs backend, model weights, tokenizer, data, TrainingSession) and
 * answers WorkerCommands with WorkerEvents. Nothing here blocks the page; any throw, rejected promise or
 * uncaught error becomes an `error` event the UI can show.
 */
import { loseWebGpuDevice, onWebGpuDeviceLost } from '../engine/backend';
import { backendDetails, benchMatmul, benchSetup, benchTraining } from '../engine/bench';
import { EngineError, describeError } from '../engine/errors';
import { HubClient, HubError, errorInfo, parseRepoId } from '../engine/io/hub';
import { moduleRoles, resolveArchitecture, uploadWeights, type DeviceWeights } from '../engine/models';
import type { TaskType } from '../engine/models/types';
import { methodInfo } from '../engine/peft/method';
import { countBaseParams } from '../engine/peft/params';
import { METHODS, methodOf, withRunSteps } from '../engine/peft/registry';
import { formatBytes } from '../engine/memory';
import { TrainingSession } from '../engine/session';
import { plannedSteps } from '../engine/train/schedule';
import { splitWords } from '../engine/train/tokcls-data';
import { setWasmTensorLimit } from '../engine/wasm-heap';
import { AdapterImport } from './adapter-import';
import { selectBackend } from './backend-select';
import { loadData, type LoadedData } from './data-loader';
import { chatPrompt, cutAtStop } from './chat-data';
import {
  downloadInspected, inspectionInfo, inspectSource, memoryReport, modelCache, modelInfo, type InspectedModel, type LoadedModel,
} from './model-loader';
import { resolveTargets, toEngineConfig, type TreeContext } from './peft-settings';
import type { BackendName, CheckpointingChoice, ClassifyResult, MemoryPlan, ModelSource, PeftSettings, WorkerCommand, WorkerEvent } from './protocol';
import { errorCode, Lock, markDeviceLost, TrainerRun } from './trainer';
import { folderSink, ggufFiles, MERGE_FOLDER, opfsMergeFolder, pythonFiles, runMerge } from './export-jobs';
import {
  checkResumeData, checkResumeModel, checkRunArgs, deleteRun, describeMethod, listRuns, prepareResume, RunRecorder, runFiles, runLog, startOf,
} from './runs';

const scope = self as unknown as DedicatedWorkerGlobalScope;
/** The step after which a diagnostics setting destroys the WebGPU device (init's loseWebGpuDeviceAtStep). */
let loseDeviceAtStep: number | null = null;
const post = (e: WorkerEvent, transfer: Transferable[] = []) => {
  scope.postMessage(e, transfer);
  if (e.type === 'metrics' && e.metrics.step === loseDeviceAtStep) {
    loseDeviceAtStep = null;
    loseWebGpuDevice();
  }
};
const log = (message: string, level: 'info' | 'warn' = 'info') => post({ type: 'log', level, message });

let baseUrl = new URL(import.meta.env.BASE_URL, scope.location.origin).href;
let backend: BackendName | null = null;
/** The model the tree, targets and memory estimate describe: inspected (header read), maybe not downloaded yet. */
let current: InspectedModel | null = null;
/**
 * Its weights and tokenizer, once downloaded; null while the download is pending, failed or cancelled. The
 * weights are uploaded to the backend once (`tensors`) and every run builds its model on them, sharing rather
 * than copying; the JavaScript copies are dropped after the upload (500 MB at GPT-2's size).
 */
type ReadyModel = Omit<LoadedModel, 'weights'> & { tensors: DeviceWeights };
let model: ReadyModel | null = null;

function releaseModel(): void {
  imported.close(); // built on these weights
  model?.tensors.forEach((t) => t.dispose());
  model = null;
}
/**
 * The header read in progress and the download in progress (of `current`), each with its own abort. A new load
 * aborts the previous header read at once, but the previous download only once the new header is good: a bad
 * repo id leaves the previous model downloading. loadId numbers the inspected model's progress events.
 */
let inspecting: AbortController | null = null;
let downloading: { loadId: number; ctl: AbortController } | null = null;
let loadCounter = 0;
let currentLoadId = 0;
let data: LoadedData | null = null;
/** The playground's generation in progress; stopGeneration sets its flag, read before each token. */
let generating: { stop: boolean } | null = null;
/** The chat template the current run's data was rendered with (null: not chat data); the playground chats in it. */
let runChatTemplate: { name: string; text: string } | null = null;
/** What the loaded data was read with (a resumed run must have the same). */
let dataRead: { maxLength: number; seed: number; validationSplit: number } | null = null;
let run: TrainerRun | null = null;
/** An imported PEFT adapter (playground, evaluation, or the start of a run). */
const imported = new AdapterImport();
let runCounter = 0;
const lock = new Lock();

// Reported here and marked handled, so the page does not also see them as a crash of the worker.
scope.addEventListener('error', (ev) => {
  ev.preventDefault();
  post({ type: 'error', code: errorCode(ev.error), message: `Worker error: ${ev.message || describeError(ev.error)}` });
});
scope.addEventListener('unhandledrejection', (ev) => {
  ev.preventDefault();
  post({ type: 'error', code: errorCode(ev.reason), message: describeError(ev.reason) });
});

function requireCurrent(): InspectedModel {
  if (!current) throw new Error('Load a model first.');
  return current;
}

function requireModel(): ReadyModel {
  if (!model) throw new Error(current ? `${current.name} is not downloaded yet: wait for the download, or press Retry.` : 'Load a model first.');
  return model;
}

function busy(): boolean {
  return !!run && run.state !== 'idle';
}

/** The config with labels from the data applied, as the session will build it (SEQ_CLS head size). */
function configFor(task: TaskType): Record<string, unknown> {
  const m = requireCurrent();
  const c = { ...m.config };
  if ((task === 'SEQ_CLS' || (task === 'TOKEN_CLS' && data?.summary.tokcls)) && data && data.labels.length >= 2) {
    c.num_labels = data.labels.length;
    c.id2label = Object.fromEntries(data.labels.map((l, i) => [String(i), l]));
    c.label2id = Object.fromEntries(data.labels.map((l, i) => [l, i]));
  }
  return c;
}

function treeContext(task: TaskType): TreeContext {
  const config = configFor(task);
  const r = resolveArchitecture(config, task);
  return { config, task, modules: r.spec.modules(r.config, r.task) };
}

function disposeRun() {
  run?.recorder?.close();
  run?.session.dispose();
  run = null;
}

/** The kept run this worker is training now (null when idle). */
function liveRunId(): string | null {
  return busy() ? run?.recorder?.id ?? null : null;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Memory for the current model at this task, batch, length and adapter size (before a download: vs free storage). */
async function memoryFor(
  task: TaskType, batch: number, seqLen: number, trainable: number, downloadBytes?: number, checkpointing?: CheckpointingChoice,
) {
  const ctx = treeContext(task);
  const r = resolveArchitecture(ctx.config, task);
  let largest = 0;
  for (const m of ctx.modules) for (const s of Object.values(m.params)) largest = Math.max(largest, numel(s));
  return memoryReport({
    config: ctx.config, task, totalParams: countBaseParams(ctx.modules, r.spec.tied(r.config, r.task)), trainable,
    largestParamElements: largest, batch, seqLen, backend, downloadBytes, checkpointing,
  });
}

/** Adapter size for the plan, with the architecture's default targets (the studio starts a new model on them). */
function planTrainable(task: TaskType, plan: MemoryPlan): number {
  const r = resolveArchitecture(configFor(task), task);
  // The studio starts a new model on the architecture's default targets.
  const peft: PeftSettings = methodOf(plan.peft.peftType).prompt
    ? plan.peft
    : ({ ...plan.peft, targetModules: r.spec.peftDefaults(r.config).lora, excludeModules: null, layersToTransform: null, layersPattern: null } as PeftSettings);
  return resolveTargets(treeContext(task), peft, requireCurrent().baseName).trainable;
}

/** The Hub repo page for a source, to link from gated / access errors. */
function repoPage(source: ModelSource): string | undefined {
  if (source.kind !== 'hub') return undefined;
  try {
    return new HubClient({ endpoint: source.endpoint }).repoUrl(parseRepoId(source.repoId).repo);
  } catch {
    return undefined;
  }
}

function errorEvent(e: unknown, cmd: WorkerCommand): WorkerEvent {
  const info = errorInfo(e);
  const ev: WorkerEvent = { type: 'error', requestId: cmd.requestId, code: info.code === 'BACKEND' ? errorCode(e) : info.code, message: info.message, retryable: info.retryable };
  // A gated or forbidden repo: its page is where access is granted. (RepoNotFound may be a typo: no link.)
  if (e instanceof HubError && e.hubCode !== 'RepoNotFound' && (e.hubCode === 'GatedRepo' || e.status === 401 || e.status === 403)) {
    const link = cmd.type === 'loadModel' ? repoPage(cmd.source) : current?.repoUrl;
    if (link) ev.link = link;
  }
  return ev;
}

async function postCache(requestId: number) {
  const { cache, persistent } = await modelCache();
  post({ type: 'cache', requestId, persistent, models: await cache.list() });
}

async function handle(cmd: WorkerCommand): Promise<void> {
  const requestId = cmd.requestId;
  switch (cmd.type) {
    case 'init': {
      if (busy()) throw new Error('Stop training before switching the backend.');
      baseUrl = cmd.baseUrl;
      setWasmTensorLimit(cmd.wasmTensorLimitBytes ?? null);
      await lock.run(async () => {
        disposeRun(); // tensors belong to the old backend
        imported.close();
        const d = await selectBackend(cmd.backend, new URL('tfjs-wasm/', baseUrl).href, cmd.wasmThreads);
        backend = d.backend;
        markDeviceLost(null);
        loseDeviceAtStep = backend === 'webgpu' ? (cmd.loseWebGpuDeviceAtStep ?? null) : null;
        // A lost device takes every tensor on it: the run in progress fails as DEVICE_LOST and the page moves the
        // project to WASM, resuming from the run's last checkpoint.
        onWebGpuDeviceLost((message) => {
          markDeviceLost(message);
          post({ type: 'log', level: 'warn', message });
        });
        post({ type: 'ready', requestId, backend: d.backend, reason: d.reason, methods: METHODS.map(methodInfo) });
      });
      return;
    }
    case 'loadModel': {
      if (busy()) throw new Error('Stop training before loading another model.');
      inspecting?.abort(); // a newer choice wins
      const ctl = new AbortController();
      inspecting = ctl;
      const loadId = ++loadCounter;
      let m: InspectedModel;
      try {
        m = await inspectSource(cmd.source, baseUrl, ctl.signal);
      } finally {
        if (inspecting === ctl) inspecting = null;
      }
      if (ctl.signal.aborted) throw new EngineError('CANCELLED', `Loading ${m.name} was cancelled.`);
      if (busy()) throw new Error('Stop training before loading another model.');
      // The header is good: this model is now the one the studio describes; the previous one is released.
      downloading?.ctl.abort();
      downloading = null;
      await lock.run(() => disposeRun());
      current = m;
      releaseModel();
      currentLoadId = loadId;
      const info = modelInfo(m);
      const insp = m.inspection;
      const memory = await memoryFor(
        info.task, cmd.plan.batch, cmd.plan.seqLen, planTrainable(info.task, cmd.plan), insp.fromCache ? undefined : insp.downloadBytes, cmd.plan.checkpointing,
      );
      post({ type: 'inspected', requestId, loadId, info, inspection: inspectionInfo(insp), memory });
      return;
    }
    case 'downloadModel': {
      const m = requireCurrent();
      if (model) {
        post({ type: 'model', requestId, info: { ...modelInfo(m, !!model.tokenizer), weightBytes: model.weightBytes } });
        return;
      }
      downloading?.ctl.abort(); // one download at a time (a second Retry restarts it, resuming from the cache)
      const mine = { loadId: currentLoadId, ctl: new AbortController() };
      downloading = mine;
      let loaded: LoadedModel;
      try {
        loaded = await downloadInspected(m, mine.ctl.signal, (progress) => post({ type: 'downloadProgress', loadId: mine.loadId, progress }));
      } finally {
        if (downloading === mine) downloading = null;
      }
      if (current !== m) throw new EngineError('CANCELLED', `Loading ${m.name} was superseded by another model.`);
      const { weights, ...rest } = loaded;
      model = { ...rest, tensors: await lock.run(() => uploadWeights(weights)) };
      weights.clear();
      if (loaded.tokenizer === null) log(`${m.name} has no tokenizer.json: text data and the playground need one.`, 'warn');
      post({ type: 'model', requestId, info: { ...modelInfo(m, !!loaded.tokenizer), weightBytes: loaded.weightBytes } });
      return;
    }
    case 'cancelLoad':
      if (cmd.step !== 'download') inspecting?.abort();
      if (cmd.step !== 'inspect') downloading?.ctl.abort();
      return;
    case 'estimateMemory': {
      if (!current) throw new Error('Load a model first.');
      post({ type: 'memory', requestId, report: await memoryFor(cmd.task, cmd.batch, cmd.seqLen, cmd.trainable, cmd.downloadBytes, cmd.checkpointing) });
      return;
    }
    case 'listCache':
      await postCache(requestId);
      return;
    case 'deleteCached': {
      const key = current?.source.cacheKey;
      if (downloading && key && key.endpoint === cmd.endpoint && key.repo === cmd.repo && key.revision === cmd.revision) {
        throw new Error(`${cmd.repo} is downloading right now: cancel the download first.`);
      }
      const { cache } = await modelCache();
      await cache.delete(cmd.repo, cmd.revision, cmd.endpoint);
      await postCache(requestId);
      return;
    }
    case 'inspect': {
      const ctx = treeContext(cmd.task);
      const r = resolveArchitecture(ctx.config, cmd.task);
      const tied = r.spec.tied(r.config, r.task);
      const roles = moduleRoles(ctx.config, cmd.task, ctx.modules);
      post({ type: 'tree', requestId, tree: { task: cmd.task, modules: ctx.modules, totalParams: countBaseParams(ctx.modules, tied), tied, roles } });
      return;
    }
    case 'setTargets': {
      const result = resolveTargets(treeContext(cmd.task), cmd.peft, requireCurrent().baseName);
      post({ type: 'targets', requestId, result });
      return;
    }
    case 'loadData': {
      const encode = model?.tokenizer ? (s: string) => model!.tokenizer!.encode(s) : null;
      data = await loadData(cmd.request, baseUrl, encode, model?.tokenizer ?? null);
      dataRead = { maxLength: cmd.request.maxLength, seed: cmd.request.seed, validationSplit: cmd.request.validationSplit };
      post({ type: 'data', requestId, summary: data.summary });
      return;
    }
    case 'start': {
      if (busy()) throw new Error('A run is already in progress.');
      const m = requireModel();
      if (!data) throw new Error('Choose a dataset first.');
      if (!backend) throw new Error('The backend is not ready yet.');
      // A resume continues a kept run with its own settings, from its newest complete checkpoint.
      const resume = cmd.resume ? await prepareResume(cmd.resume, null) : null;
      runChatTemplate = data.summary.chat?.template ?? null;
      if (resume) (checkResumeModel(resume.record, m.baseName), checkResumeData(resume.record, dataRead));
      const { task, peft, args } = resume ? (startOf(resume.record) as unknown as typeof cmd) : cmd;
      const fromImport = !resume && cmd.fromImport;
      checkRunArgs(args, data.validation.length > 0);
      const runId = ++runCounter;
      post({ type: 'state', runId, state: 'starting' });
      // "auto" checkpointing follows the memory estimate for this run's settings.
      const targets = resolveTargets(treeContext(task), peft, m.baseName);
      const seq = args.maxLength + (targets.virtualTokens ?? 0);
      const plan = await memoryFor(task, args.batchSize, seq, targets.trainable, undefined, args.gradientCheckpointing);
      const checkpointing = plan.checkpointing.on;
      if (args.gradientCheckpointing === 'auto' && checkpointing) {
        const without = (await memoryFor(task, args.batchSize, seq, plan.trainable, undefined, 'off')).estimate.totalBytes;
        log(`Gradient checkpointing is on: this run needs about ${formatBytes(plan.estimate.totalBytes)} with it, ${formatBytes(without)} without.`);
      }
      const engineConfig = ((c) => (fromImport ? imported.continueConfig(c) : c))(
        toEngineConfig(withRunSteps(peft, plannedSteps(args, data.train.length)), task, m.baseName),
      );
      const session = await lock.run(async () => {
        disposeRun();
        return TrainingSession.create({
          config: configFor(task),
          weights: m.tensors,
          tokenizer: m.tokenizer ?? undefined,
          task,
          peft: engineConfig,
          initialAdapter: fromImport ? imported.require().source() : undefined,
          data: { train: data!.train, validation: data!.validation },
          args: { ...args, epochs: args.epochs ?? 1, maxSteps: args.maxSteps ?? null, gradientCheckpointing: checkpointing },
          baseModelName: m.baseName,
          revision: m.revision,
          numLabels: task === 'SEQ_CLS' ? data!.labels.length : undefined,
          maxTargetLength: task === 'SEQ_2_SEQ_LM' ? args.maxTargetLength ?? undefined : undefined,
          resumeFrom: resume?.files,
        });
      }).catch((e) => {
        post({ type: 'state', runId, state: 'idle' });
        throw e;
      });
      const method = methodOf(peft.peftType);
      const recorder = resume
        ? await RunRecorder.resume(session, resume.record, backend, runId, post)
        : await RunRecorder.create(session, {
          name: `${m.name} · ${method.label} · ${data.summary.name}`,
          config: {
            model: m.name, baseModel: m.baseName, task, method: peft.peftType, methodLabel: method.label,
            methodSettings: describeMethod(engineConfig as unknown as Record<string, unknown> & { peftType: string }, method.prompt),
            data: data.summary.name, trainExamples: data.train.length, validationExamples: data.validation.length, labels: data.labels,
            learningRate: args.learningRate, batchSize: args.batchSize, gradientAccumulationSteps: args.gradientAccumulationSteps,
            evalSteps: args.evalSteps, seed: args.seed, maxLength: args.maxLength,
          },
          start: { task, peft, args, data: dataRead },
          backend,
        }, runId, post);
      for (const why of resume?.skipped ?? []) log(`Skipped a damaged checkpoint: ${why}`, 'warn');
      // The reply: the run is set up (errors before this point reject the start request itself).
      post({ type: 'state', requestId, runId, state: 'starting' });
      post({ type: 'runStarted', runId, record: recorder.summary(), history: session.logHistory.slice() });
      log(resume ? `Resuming ${resume.record.name} from step ${session.completedSteps} on ${backend}: ${session.totalSteps} steps.` : `Training on ${backend}: ${session.totalSteps} steps.`);
      run = new TrainerRun(runId, session, lock, post, recorder, resume?.record.durationMs ?? 0);
      imported.active = false; // the playground follows the new run
      void run.run(args.evalSteps);
      return;
    }
    case 'listRuns':
      post({ type: 'runs', requestId, ...(await listRuns(liveRunId(), () => post({ type: 'runsChanged' }))) });
      return;
    case 'runLog':
      post({ type: 'runLog', requestId, id: cmd.id, history: await runLog(cmd.id) });
      return;
    case 'runFiles': {
      const f = await runFiles(cmd.id);
      const transfer = Object.values(f.files).filter((v): v is ArrayBuffer => v instanceof ArrayBuffer);
      post({ type: 'runFiles', requestId, id: cmd.id, ...f }, transfer);
      return;
    }
    case 'deleteRun':
      await deleteRun(cmd.id, liveRunId());
      post({ type: 'runs', requestId, ...(await listRuns(liveRunId())) });
      return;
    case 'pause':
      run?.pause(requestId);
      return;
    case 'resume':
      run?.resumeRun(requestId);
      return;
    case 'stop':
      run?.stop(requestId);
      return;
    case 'export': {
      if (!run) throw new Error('Nothing to export yet: start training first.');
      const ok = await lock.run(() => run!.checkpoint(requestId));
      if (!ok) throw new Error('No adapter weights are available yet.');
      return;
    }
    case 'stopGeneration':
      if (generating) generating.stop = true;
      return;
    case 'generate': {
      const s = imported.playing() ?? run?.session;
      if (!s) throw new Error('Train or import an adapter first: the playground compares the adapter with the base model.');
      const g = { stop: false };
      if (s.model.task === 'SEQ_2_SEQ_LM') {
        // Encoder-decoder: the source in, the greedy target out (KV-cached decoding), adapter on then off.
        let tokens = 0;
        const stream = (adapter: boolean) => async (text: string) => {
          if (adapter) tokens += 1;
          post({ type: 'generationPartial', forRequest: requestId, adapter, text });
          await new Promise((r) => setTimeout(r, 0));
        };
        const o = { maxNewTokens: cmd.maxNewTokens, shouldStop: () => g.stop };
        const [on, off, ms] = await lock.run(async () => {
          generating = g;
          try {
            const t0 = performance.now();
            const a = await s.generateSeq2Seq(cmd.prompt, { ...o, adapter: true, onText: stream(true) });
            // Per token generated (a target can end with </s> long before max new tokens).
            const took = (performance.now() - t0) / Math.max(1, tokens);
            return [a, await s.generateSeq2Seq(cmd.prompt, { ...o, adapter: false, onText: stream(false) }), took] as const;
          } finally {
            if (generating === g) generating = null;
          }
        });
        post({ type: 'generation', requestId, withAdapter: on, withoutAdapter: off, msPerToken: g.stop ? undefined : ms, ...(g.stop ? { stopped: true } : {}) });
        return;
      }
      const sm = cmd.sampling;
      // A chat reply ends at the template's end of turn (a text: with the built-in tokenizer it is several tokens).
      const chat = cmd.chat ? chatPrompt(model?.tokenizer ?? null, cmd.chat, imported.playing() ? null : runChatTemplate) : null;
      // The base model's side keeps its own conversation (its own replies) when the page sends one.
      const chatOff = chat && cmd.chatOff ? chatPrompt(model?.tokenizer ?? null, cmd.chatOff, imported.playing() ? null : runChatTemplate) : chat;
      const prompt = chat ? chat.prompt : cmd.prompt;
      const promptOff = chatOff ? chatOff.prompt : cmd.prompt;
      let ended = false;
      // Each token's text goes to the page, then the worker yields to its message queue so a stop can arrive.
      const stream = (adapter: boolean) => async (raw: string) => {
        const c = cutAtStop(raw, chat?.stops ?? []);
        ended = c.ended;
        post({ type: 'generationPartial', forRequest: requestId, adapter, text: c.text });
        await new Promise((r) => setTimeout(r, 0));
      };
      const reply = (text: string) => cutAtStop(text, chat?.stops ?? []).text;
      // The same sampling and seed for both, so that with greedy decoding differences come from the adapter alone.
      const o = {
        ...(sm
          ? { maxNewTokens: cmd.maxNewTokens, temperature: sm.temperature, topK: sm.topK, topP: sm.topP, repetitionPenalty: sm.repetitionPenalty, seed: sm.seed }
          : { maxNewTokens: cmd.maxNewTokens, temperature: 0 }),
        shouldStop: () => g.stop || ended,
        // A rendered chat template carries its own special tokens (BOS once, not twice).
        ...(chat ? { addSpecialTokens: chat.addSpecialTokens } : {}),
      };
      const [withAdapter, withoutAdapter, msPerToken] = await lock.run(async () => {
        generating = g;
        try {
          const t0 = performance.now();
          const on = reply(await s.generate(prompt, { ...o, adapter: true, onText: stream(true) }));
          const ms = (performance.now() - t0) / Math.max(1, cmd.maxNewTokens);
          ended = false;
          return [on, reply(await s.generate(promptOff, { ...o, adapter: false, onText: stream(false) })), ms] as const;
        } finally {
          if (generating === g) generating = null;
        }
      });
      post({
        type: 'generation', requestId, withAdapter, withoutAdapter, msPerToken: g.stop ? undefined : msPerToken,
        ...(g.stop ? { stopped: true } : {}),
        ...(chat ? { chat: { prompt: chat.prompt, template: chat.template, ...(promptOff !== prompt ? { promptOff } : {}) } } : {}),
      });
      return;
    }
    case 'classify': {
      const s = imported.playing() ?? run?.session;
      if (!s) throw new Error('Train or import an adapter first: the playground compares the adapter with the base model.');
      const names = data?.labels ?? [];
      const named = (r: { label: number; probs: number[] }): ClassifyResult => ({
        label: names[r.label] ?? String(r.label),
        probs: r.probs.map((p, i) => ({ label: names[i] ?? String(i), p })),
      });
      const [a, b] = await lock.run(async () => [await s.classify(cmd.text, { adapter: true }), await s.classify(cmd.text, { adapter: false })]);
      post({ type: 'classification', requestId, withAdapter: named(a), withoutAdapter: named(b) });
      return;
    }
    case 'tag': {
      const s = run?.session;
      if (!s) throw new Error(imported.playing() ? 'Tagging with an imported adapter is not available: train a run to tag text.' : 'Train an adapter first: the playground compares the adapter with the base model.');
      const names = data?.labels ?? [];
      const words = splitWords(cmd.text);
      if (!words.length) throw new EngineError('BAD_ARGUMENT', 'Type a sentence to tag.');
      const [a, b] = await lock.run(async () => [await s.tagWords(words, { adapter: true }), await s.tagWords(words, { adapter: false })]);
      const named = (ids: number[]) => ids.map((i) => names[i] ?? String(i));
      post({ type: 'tagged', requestId, words, withAdapter: named(a), withoutAdapter: named(b) });
      return;
    }
    case 'importAdapter': {
      if (busy()) throw new Error('Stop training before importing an adapter.');
      const m = requireModel();
      const info = await lock.run(() =>
        imported.load(
          { config: requireCurrent().config, weights: m.tensors, tokenizer: m.tokenizer, task: cmd.task, labels: data?.labels ?? [], modelName: m.baseName ?? undefined },
          cmd.files, cmd.name,
        ),
      );
      post({ type: 'adapterImported', requestId, info });
      return;
    }
    case 'evaluateAdapter': {
      const a = imported.require();
      if (!data) throw new Error('Choose a dataset first: the adapter is evaluated on its validation rows.');
      const result = await lock.run(() => a.evaluate(data!.validation, { batchSize: cmd.batchSize, maxLength: cmd.maxLength, generationEvalRows: cmd.generationEvalRows }));
      post({ type: 'adapterEval', requestId, result });
      return;
    }
    case 'closeAdapter':
      await lock.run(() => imported.close());
      post({ type: 'adapterClosed', requestId });
      return;
    case 'bench': {
      if (busy()) throw new Error('Stop training before benchmarking.');
      if (!backend) throw new Error('The backend is not ready yet.');
      const on = backend;
      await lock.run(async () => {
        const train = await benchTraining(cmd.shape, { steps: cmd.steps, checkpointing: cmd.checkpointing, profileMemory: true });
        const mm = await benchMatmul(cmd.matmulRuns);
        post({ type: 'benchResult', requestId, result: { backend: on, details: await backendDetails(), ...train, ...mm } });
      });
      return;
    }
    case 'benchSetup':
      benchSetup(cmd.setup);
      return;
    case 'mergeModel':
    case 'exportGguf': {
      const peft = imported.playing()?.peft ?? run?.session.peft;
      if (!peft) throw new Error('Train or import an adapter first: there is nothing to export yet.');
      const m = requireCurrent();
      if (cmd.type === 'exportGguf') {
        const files = await lock.run(() => ggufFiles(peft, { outtype: cmd.outtype, source: m.source, baseName: m.baseName, ollamaFrom: cmd.ollamaFrom }));
        post({ type: 'exportFiles', requestId, files: asTransferable(files) });
        return;
      }
      const folderName = `${m.name.replace(/[^A-Za-z0-9._-]+/g, '_')}-merged`;
      const dir = cmd.folder ?? (await opfsMergeFolder(folderName));
      const r = await lock.run(() => runMerge({
        peft, dtype: cmd.dtype, maxShardSize: cmd.maxShardSize, baseName: m.baseName, source: m.source, open: folderSink(dir),
        onTensor: (name, done, total) => post({ type: 'mergeProgress', mergeId: requestId, done, total, name }),
      }));
      post({ type: 'merged', requestId, files: r.files, totalBytes: r.totalBytes, opfsFolder: cmd.folder ? null : `${MERGE_FOLDER}/${folderName}` });
      return;
    }
    case 'exportPython': {
      if (!data) throw new Error('Choose a dataset first.');
      if (cmd.task === 'SEQ_2_SEQ_LM' || cmd.task === 'TOKEN_CLS') {
        // train.py builds AutoModelForCausalLM / AutoModelForSequenceClassification runs with their collators.
        throw new EngineError('NOT_EXPORTABLE', `The Python project trains CAUSAL_LM and SEQ_CLS runs, not ${cmd.task} yet; the CLI trains this one (npm run cli -- train --task ${cmd.task.toLowerCase()} ...), and the adapter zip loads in PEFT as it is.`);
      }
      const m = requireCurrent();
      const files = await pythonFiles({
        task: cmd.task, peft: cmd.peft, args: cmd.args, data: cmd.data, labels: data.labels, trainRows: data.train.length,
        chat: !!data.summary.chat, config: configFor(cmd.task), baseName: m.baseName, revision: m.revision, baseUrl,
      });
      post({ type: 'exportFiles', requestId, files: asTransferable(files) });
      return;
    }
  }
}

/** Binary files as ArrayBuffers for postMessage. */
function asTransferable(files: Record<string, string | Uint8Array>): Record<string, string | ArrayBuffer> {
  return Object.fromEntries(Object.entries(files).map(([k, v]) => [k, typeof v === 'string' ? v : (v.slice().buffer as ArrayBuffer)]));
}

scope.addEventListener('message', (ev: MessageEvent<WorkerCommand>) => {
  const cmd = ev.data;
  handle(cmd).catch((e) => post(errorEvent(e, cmd)));
});
