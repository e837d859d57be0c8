/// <reference lib="webworker" />
/**
 * The training worker: owns the engine (tfjs backend, model weights, tokenizer, data, TrainingSession) and
 * answers WorkerCommands with WorkerEvents. Nothing here blocks the page; any throw, rejected promise or
 * uncaught error becomes an `error` event the UI can show.
 */
import { describeError } from '../engine/errors';
import { resolveArchitecture } from '../engine/models';
import { countBaseParams } from '../engine/peft/params';
import { TrainingSession } from '../engine/session';
import { selectBackend } from './backend-select';
import { loadData, type LoadedData } from './data-loader';
import { loadModelFiles, type LoadedModel } from './model-loader';
import { resolveTargets, toEngineConfig, type TreeContext } from './peft-settings';
import type { BackendName, ClassifyResult, WorkerCommand, WorkerEvent } from './protocol';
import { errorCode, Lock, TrainerRun } from './trainer';

const scope = self as unknown as DedicatedWorkerGlobalScope;
const post = (e: WorkerEvent, transfer: Transferable[] = []) => scope.postMessage(e, transfer);
const log = (message: string, level: 'info' | 'warn' = 'info') => post({ type: 'log', level, message });

let baseUrl = new URL(import.meta.env.BASE_URL, scope.location.origin).href;
let backend: BackendName | null = null;
let model: LoadedModel | null = null;
let data: LoadedData | null = null;
let run: TrainerRun | null = null;
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

function requireModel(): LoadedModel {
  if (!model) throw new Error('Load a model first.');
  return model;
}

function busy(): boolean {
  return !!run && run.state !== 'idle';
}

/** The config with labels from the data applied, as the session will build it (SEQ_CLS head size). */
function configFor(task: 'CAUSAL_LM' | 'SEQ_CLS'): Record<string, unknown> {
  const m = requireModel();
  const c = { ...m.config };
  if (task === 'SEQ_CLS' && data && data.labels.length >= 2) {
    c.num_labels = data.labels.length;
    c.id2label = Object.fromEntries(data.labels.map((l, i) => [String(i), l]));
    c.label2id = Object.fromEntries(data.labels.map((l, i) => [l, i]));
  }
  return c;
}

function treeContext(task: 'CAUSAL_LM' | 'SEQ_CLS'): TreeContext {
  const config = configFor(task);
  const r = resolveArchitecture(config, task);
  return { config, task, modules: r.spec.modules(r.config, r.task) };
}

function disposeRun() {
  run?.session.dispose();
  run = null;
}

async function handle(cmd: WorkerCommand): Promise<void> {
  const requestId = cmd.requestId;
  switch (cmd.type) {
    case 'init': {
      if (busy()) throw new Error('Stop training before switching the backend.');
      baseUrl = cmd.baseUrl;
      await lock.run(async () => {
        disposeRun(); // tensors belong to the old backend
        const d = await selectBackend(cmd.backend, new URL('tfjs-wasm/', baseUrl).href);
        backend = d.backend;
        post({ type: 'ready', requestId, backend: d.backend, reason: d.reason });
      });
      return;
    }
    case 'loadModel': {
      if (busy()) throw new Error('Stop training before loading another model.');
      const m = await loadModelFiles(cmd.source, (t) => log(t));
      const r = resolveArchitecture(m.config); // fails early, with a clear message, on an unsupported model
      await lock.run(() => disposeRun());
      model = m;
      post({
        type: 'model', requestId,
        info: {
          name: m.name, modelType: r.config.modelType, className: r.className, task: r.task, hasTokenizer: !!m.tokenizer,
          weightBytes: m.weightBytes, files: m.files, defaultTargets: r.spec.defaultTargets,
        },
      });
      return;
    }
    case 'inspect': {
      const ctx = treeContext(cmd.task);
      const r = resolveArchitecture(ctx.config, cmd.task);
      post({ type: 'tree', requestId, tree: { task: cmd.task, modules: ctx.modules, totalParams: countBaseParams(ctx.modules, r.spec.tied(r.config, r.task)) } });
      return;
    }
    case 'setTargets': {
      const result = resolveTargets(treeContext(cmd.task), cmd.peft, requireModel().baseName);
      post({ type: 'targets', requestId, result });
      return;
    }
    case 'loadData': {
      const encode = model?.tokenizer ? (s: string) => model!.tokenizer!.encode(s) : null;
      data = await loadData(cmd.request, baseUrl, encode);
      post({ type: 'data', requestId, summary: data.summary });
      return;
    }
    case 'start': {
      if (busy()) throw new Error('A run is already in progress.');
      const m = requireModel();
      if (!data) throw new Error('Choose a dataset first.');
      if (!backend) throw new Error('The backend is not ready yet.');
      const runId = ++runCounter;
      post({ type: 'state', requestId, runId, state: 'starting' });
      const session = await lock.run(async () => {
        disposeRun();
        return TrainingSession.create({
          config: configFor(cmd.task),
          weights: m.weights,
          tokenizer: m.tokenizer ?? undefined,
          task: cmd.task,
          peft: toEngineConfig(cmd.peft, cmd.task, m.baseName),
          data: { train: data!.train, validation: data!.validation },
          args: { ...cmd.args, epochs: cmd.args.epochs ?? 1, maxSteps: cmd.args.maxSteps ?? null },
          baseModelName: m.baseName,
          revision: m.revision,
          numLabels: cmd.task === 'SEQ_CLS' ? data!.labels.length : undefined,
        });
      }).catch((e) => {
        post({ type: 'state', runId, state: 'idle' });
        throw e;
      });
      log(`Training on ${backend}: ${session.totalSteps} steps.`);
      run = new TrainerRun(runId, session, lock, post);
      void run.run(cmd.args.evalSteps);
      return;
    }
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
    case 'generate': {
      const s = run?.session;
      if (!s) throw new Error('Train first: the playground compares the trained adapter with the base model.');
      const o = { maxNewTokens: cmd.maxNewTokens, temperature: 0 };
      const [withAdapter, withoutAdapter] = await lock.run(async () => [await s.generate(cmd.prompt, { ...o, adapter: true }), await s.generate(cmd.prompt, { ...o, adapter: false })]);
      post({ type: 'generation', requestId, withAdapter, withoutAdapter });
      return;
    }
    case 'classify': {
      const s = run?.session;
      if (!s) throw new Error('Train first: the playground compares the trained adapter with the base model.');
      const names = data?.labels ?? [];
      const named = (r: { label: number; probs: number[] }): ClassifyResult => ({
        label: names[r.label] ?? String(r.label),
        probs: r.probs.map((p, i) => ({ label: names[i] ?? String(i), p })),
      });
      const [a, b] = await lock.run(async () => [await s.classify(cmd.text, { adapter: true }), await s.classify(cmd.text, { adapter: false })]);
      post({ type: 'classification', requestId, withAdapter: named(a), withoutAdapter: named(b) });
      return;
    }
  }
}

scope.addEventListener('message', (ev: MessageEvent<WorkerCommand>) => {
  const cmd = ev.data;
  handle(cmd).catch((e) => post({ type: 'error', requestId: cmd.requestId, code: errorCode(e), message: describeError(e) }));
});
