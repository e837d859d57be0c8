/**
 * The Export panel's "Push to the Hub": the run's latest adapter (its two files) plus a model card made from the
 * run (method config, task, data, final / best metrics), pushed from the page with the Hub URL and token of the
 * Hub settings (the engine sends the token to that URL's origin only). A 409 keeps `exists`, so the form can
 * offer to upload into the repo instead.
 */
import { create } from 'zustand';
import { CURVES_FILE, trainingCurvesSvg, type Baseline } from '../engine/export/chart-svg';
import { describeError } from '../engine/errors';
import { mergedModelCard, modelCard, pushToHub, type PushFiles, type PushProgress, type PushResult } from '../engine/io/hub-push';
import { HubError } from '../engine/io/http-source';
import { withBaseModel } from './export-files';
import { useProject } from './project';
import { useRun } from './run';
import { hubEndpoint, useSettings } from './settings';

export interface PushState {
  busy: boolean;
  /** 'merging' while the worker writes the merged model, before the upload. */
  progress: PushProgress | { phase: 'merging'; fraction?: undefined; file?: undefined } | null;
  result: PushResult | null;
  /** `exists`: the name is taken (HTTP 409); pushing again with existOk uploads into it. */
  error: { message: string; exists: boolean } | null;
  /**
   * base_model_name_or_path for the zipped and pushed adapter_config.json (and the card's base_model); null: the
   * adapter's own (the Hub id of a Hub model, the folder name of a local one).
   */
  baseModelName: string | null;
}

export const usePush = create<PushState>(() => ({ busy: false, progress: null, result: null, error: null, baseModelName: null }));

/** Sets the base model name the export zip and the push write into adapter_config.json (blank: the adapter's own). */
export function setBaseModelName(name: string): void {
  usePush.setState({ baseModelName: name });
}

/** The adapter's config text with the chosen base model name (unchanged when none was chosen). */
export function adapterConfigText(configJson: string): string {
  const name = usePush.getState().baseModelName?.trim();
  return name ? withBaseModel(configJson, name) : configJson;
}

const set = (p: Partial<PushState>) => usePush.setState(p);

/** What the run trained on, for the model card. */
function dataText(): string | undefined {
  const s = useProject.getState();
  const sum = s.data.summary;
  const name = s.hubData ? `the Hub dataset ${s.hubData.id} (split ${s.hubData.split})` : sum?.name;
  if (!name) return undefined;
  return `${name}${sum ? `: ${sum.trainRows} training / ${sum.validationRows} validation rows` : ''}.`;
}

/** The run's final and best metrics, as the model card's table. */
function metrics(): { final: Record<string, number>; best?: { metric: string; value: number } } {
  const r = useRun.getState();
  const last = r.metrics[r.metrics.length - 1];
  const ev = r.evals[r.evals.length - 1];
  const final: Record<string, number> = {};
  if (last) final.loss = last.loss;
  if (ev) {
    final.eval_loss = ev.evalLoss;
    if (Number.isFinite(ev.accuracy)) final.eval_accuracy = ev.accuracy;
    if (ev.f1 !== undefined) final.eval_f1 = ev.f1;
    // SEQ_2_SEQ_LM: the scores of greedy generation, named as Seq2SeqTrainer logs them.
    if (ev.exactMatch !== undefined) final.eval_exact_match = ev.exactMatch;
    if (ev.chrf !== undefined) final.eval_chrf = ev.chrf;
    if (ev.rougeL !== undefined) final.eval_rougeL = ev.rougeL;
  }
  return { final, best: r.checkpoint?.best };
}

/**
 * training_curves.svg of the current run (train loss, eval loss, the eval metric with the classification
 * baselines; the step-0 evaluation is the base model), or null before anything was logged.
 */
export function runCurvesSvg(): string | null {
  const r = useRun.getState();
  if (!r.metrics.length && !r.evals.length) return null;
  const acc = r.evals.some((e) => Number.isFinite(e.accuracy));
  // SEQ_2_SEQ_LM: chrF from greedy generation (0-100), the score the run is judged by.
  const chrf = r.task === 'SEQ_2_SEQ_LM' && r.evals.some((e) => e.chrf !== undefined);
  const metric = chrf
    ? { name: 'eval_chrf', points: r.evals.map((e) => ({ step: e.step, value: e.chrf ?? NaN })) }
    : acc
    ? { name: r.task === 'CAUSAL_LM' ? 'eval_accuracy (next token)' : 'eval_accuracy', points: r.evals.map((e) => ({ step: e.step, value: e.accuracy })) }
    : r.evals.some((e) => e.f1 !== undefined) ? { name: 'eval_f1', points: r.evals.map((e) => ({ step: e.step, value: e.f1 ?? NaN })) } : null;
  const baselines: Baseline[] = acc && !chrf && r.baselines ? [{ name: 'majority class', value: r.baselines.majority }, { name: 'bag-of-words', value: r.baselines.bagOfWords }] : [];
  return trainingCurvesSvg({
    trainLoss: r.metrics.map((m) => ({ step: m.step, value: m.loss })),
    evalLoss: r.evals.map((e) => ({ step: e.step, value: e.evalLoss })),
    metric, baselines,
  });
}

/** Creates the repo (private unless said otherwise) and uploads the latest adapter with its model card. */
export async function pushAdapter(o: { repo: string; private: boolean; existOk?: boolean }): Promise<void> {
  const cp = useRun.getState().checkpoint;
  if (usePush.getState().busy || !cp) return;
  set({ busy: true, progress: null, result: null, error: null });
  try {
    const configText = adapterConfigText(cp.files['adapter_config.json']);
    const config = JSON.parse(configText) as Record<string, unknown>;
    const labels = cp.task === 'CAUSAL_LM' ? undefined : useProject.getState().data.summary?.labels;
    const curves = runCurvesSvg();
    const readme = modelCard({ config, task: cp.task, repo: o.repo.trim(), data: dataText(), steps: cp.step, labels, ...metrics(), curvesFile: curves ? CURVES_FILE : undefined });
    const settings = useSettings.getState();
    const result = await pushToHub({
      repo: o.repo.trim(), token: settings.token, endpoint: hubEndpoint(settings), private: o.private, existOk: o.existOk,
      files: { 'adapter_model.safetensors': new Uint8Array(cp.files['adapter_model.safetensors']), 'adapter_config.json': configText, 'README.md': readme, ...(curves ? { [CURVES_FILE]: curves } : {}) },
      onProgress: (progress) => set({ progress }),
    });
    set({ result });
  } catch (e) {
    set({ error: { message: describeError(e), exists: e instanceof HubError && e.hubCode === 'RepoExists' } });
  } finally {
    set({ busy: false, progress: null });
  }
}

/**
 * Pushes the merged model: the worker merges the run's adapter into the base weights tensor by tensor into the
 * browser's private storage (as Merge and download does), and each file goes up as the disk-backed File OPFS hands
 * out, so the page never holds a copy of the model. The card says merged and names the base model.
 */
export async function pushMerged(o: { repo: string; private: boolean; existOk?: boolean; dtype?: 'F32' | 'F16' | 'BF16' }): Promise<void> {
  const cp = useRun.getState().checkpoint;
  if (usePush.getState().busy || !cp) return;
  set({ busy: true, progress: { phase: 'merging' }, result: null, error: null });
  try {
    const { worker } = await import('./worker-client');
    const dtype = o.dtype ?? 'F32';
    const r = await worker().request({ type: 'mergeModel', dtype, maxShardSize: 2e9 }, 'merged');
    if (!r.opfsFolder) throw new Error('The merged model was not kept in the browser\'s storage, so it cannot be pushed from here.');
    let dir = await navigator.storage.getDirectory();
    for (const part of r.opfsFolder.split('/')) dir = await dir.getDirectoryHandle(part);
    const adapterConfig = JSON.parse(adapterConfigText(cp.files['adapter_config.json'])) as Record<string, unknown>;
    const curves = runCurvesSvg();
    const files: PushFiles = {
      'README.md': mergedModelCard({
        baseModel: String(adapterConfig.base_model_name_or_path ?? 'the base model'), adapterConfig, task: cp.task, dtype, repo: o.repo.trim(),
        data: dataText(), steps: cp.step, final: metrics().final, curvesFile: curves ? CURVES_FILE : undefined,
      }),
    };
    for (const name of r.files) if (name !== 'README.md') files[name] = await (await dir.getFileHandle(name)).getFile();
    if (curves) files[CURVES_FILE] = curves;
    const settings = useSettings.getState();
    const result = await pushToHub({
      repo: o.repo.trim(), token: settings.token, endpoint: hubEndpoint(settings), private: o.private, existOk: o.existOk, files,
      commitTitle: 'Upload merged model from PEFT Studio', onProgress: (progress) => set({ progress }),
    });
    set({ result });
  } catch (e) {
    set({ error: { message: describeError(e), exists: e instanceof HubError && e.hubCode === 'RepoExists' } });
  } finally {
    set({ busy: false, progress: null });
  }
}
