/**
 * `push --adapter DIR --repo owner/name [--private|--public] [--exist-ok] [--token T] [--endpoint URL]`: creates a
 * model repo on the Hub (private by default) and uploads the adapter folder's adapter_model.safetensors and
 * adapter_config.json (plus labels.json / chat_template.jinja when present, and training_curves.svg drawn from metrics.jsonl) with a model card README.md made from
 * the adapter config and, for a `train --out` folder, run.json's task, steps and metrics.
 */
import { existsSync, mkdtempSync, openAsBlob, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { EngineError } from '../engine/errors';
import { CURVES_FILE, curvesFromRows, trainingCurvesSvg } from '../engine/export/chart-svg';
import { mergedModelCard, modelCard, pushToHub, type PushFiles } from '../engine/io/hub-push';
import { hubSettingsFromEnv } from '../engine/io/node-source';
import { BACKEND_OPTION, flag, helpText, note, parseArgv, required, str, usage, type CommandSpec } from './common';
import { mergeCommand } from './merge';

export const PUSH: CommandSpec = {
  name: 'push',
  summary: 'Creates a Hub model repo (private by default) and uploads a PEFT adapter folder, or with --merged the merged model, with a model card.',
  usage: 'npm run cli -- push --adapter DIR --repo owner/name [--merged --model DIR|ID [--dtype f16] [--max-shard-size 2GB]] [--public] [--exist-ok] [--token hf_...] [--endpoint URL]',
  options: {
    adapter: { kind: 'value', arg: 'DIR', help: 'PEFT adapter folder (adapter_config.json + adapter_model.safetensors), e.g. a train --out folder.' },
    repo: { kind: 'value', arg: 'OWNER/NAME', help: 'The repo to create: your user name or an organisation, then a new name.' },
    private: { kind: 'flag', help: 'Only you (and your organisation) can see the repo (the default).' },
    public: { kind: 'flag', help: 'Everyone can see the repo.' },
    'exist-ok': { kind: 'flag', help: 'Upload into the repo if it exists already (its adapter files and README.md are replaced).' },
    token: { kind: 'value', arg: 'TOKEN', help: 'Access token with write access (default: $HF_TOKEN or $HUGGING_FACE_HUB_TOKEN).' },
    endpoint: { kind: 'value', arg: 'URL', help: 'Hub URL (default: $HF_ENDPOINT or https://huggingface.co).' },
    'base-model': { kind: 'value', arg: 'ID', help: "base_model in the model card (default: the adapter config's base_model_name_or_path)." },
    'data-description': { kind: 'value', arg: 'TEXT', help: 'What the adapter was trained on, for the model card.' },
    merged: { kind: 'flag', help: 'Push the merged model instead of the adapter: merges --adapter into --model (as the merge command), then uploads the folder (config.json, safetensors shards + index, tokenizer files, generation_config.json) with a model card.' },
    model: { kind: 'value', arg: 'DIR|ID', help: 'With --merged: the base model folder or Hub repo id.' },
    dtype: { kind: 'value', arg: 'f32|f16|bf16', help: 'With --merged: dtype of the merged weights (default: the base checkpoint\'s).' },
    'max-shard-size': { kind: 'value', arg: 'SIZE', help: 'With --merged: largest weights file, e.g. 2GB (default 5GB, as transformers).' },
    ...BACKEND_OPTION,
  },
  notes: 'The token is sent only to the Hub URL\'s own origin; the weights go to the Hub\'s storage without it.',
};

const EXTRA_FILES = ['labels.json', 'chat_template.jinja'];

interface RunJson {
  task?: string;
  completed_steps?: number;
  train_examples?: number;
  validation_examples?: number;
  best_metric?: number | null;
  best_step?: number | null;
  args?: { metricForBestModel?: string };
  final?: Record<string, unknown>;
}

function readJsonFile<T>(path: string): T | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null; // a broken run.json only leaves the metrics out of the card
  }
}

/** The files to push from an adapter folder: the two adapter files, extras, and the generated model card. */
export function adapterPushFiles(dir: string, o: { repo: string; baseModel?: string; data?: string }): PushFiles {
  const read = (f: string) => {
    const p = join(dir, f);
    if (!existsSync(p)) throw new EngineError('ADAPTER_MISMATCH', `${p}: file not found (an adapter folder holds adapter_config.json and adapter_model.safetensors)`);
    return new Uint8Array(readFileSync(p));
  };
  const configBytes = read('adapter_config.json');
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(new TextDecoder().decode(configBytes)) as Record<string, unknown>;
  } catch (e) {
    throw new EngineError('ADAPTER_MISMATCH', `${join(dir, 'adapter_config.json')} is not JSON: ${(e as Error).message}`);
  }
  if (typeof config.peft_type !== 'string') throw new EngineError('ADAPTER_MISMATCH', `${join(dir, 'adapter_config.json')} has no peft_type: it is not a PEFT adapter config.`);
  const weights = read('adapter_model.safetensors');
  const run = readJsonFile<RunJson>(join(dir, 'run.json'));
  const labelsJson = readJsonFile<{ id2label?: Record<string, string> }>(join(dir, 'labels.json'));
  const final = Object.fromEntries(Object.entries(run?.final ?? {}).filter(([k, v]) => typeof v === 'number' && !/tokens_per|runtime|_per_second|^step$|^epoch$/.test(k))) as Record<string, number>;
  const curves = curvesOf(dir);
  const counts = run?.train_examples !== undefined ? `${run.train_examples} training / ${run.validation_examples ?? 0} validation examples.` : '';
  const readme = modelCard({
    config, repo: o.repo, baseModel: o.baseModel, task: String(config.task_type ?? run?.task ?? 'CAUSAL_LM'),
    data: [o.data, counts].filter(Boolean).join(' ') || undefined,
    steps: run?.completed_steps, final,
    best: run?.best_metric != null ? { metric: run.args?.metricForBestModel ?? 'eval_loss', value: run.best_metric, step: run.best_step } : undefined,
    labels: labelsJson?.id2label ? Object.values(labelsJson.id2label) : undefined,
    curvesFile: curves ? CURVES_FILE : undefined,
  });
  const files: PushFiles = { 'adapter_model.safetensors': weights, 'adapter_config.json': configBytes, 'README.md': readme };
  for (const f of EXTRA_FILES) if (existsSync(join(dir, f))) files[f] = new Uint8Array(readFileSync(join(dir, f)));
  if (curves) files[CURVES_FILE] = curves;
  return files;
}

/** training_curves.svg from a train --out folder's metrics.jsonl (null without one; unreadable rows are skipped). */
function curvesOf(dir: string): string | null {
  const p = join(dir, 'metrics.jsonl');
  if (!existsSync(p)) return null;
  const rows: Record<string, unknown>[] = [];
  for (const line of readFileSync(p, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      rows.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a torn last line (a run killed mid-write) only shortens the curve
    }
  }
  const c = curvesFromRows(rows);
  return c ? trainingCurvesSvg(c) : null;
}

/** run.json of a train --out folder, for the merged model's card (steps, final metrics). */
function runInfo(dir: string): { steps?: number; final: Record<string, number> } {
  const run = readJsonFile<RunJson>(join(dir, 'run.json'));
  const final = Object.fromEntries(Object.entries(run?.final ?? {}).filter(([k, v]) => typeof v === 'number' && !/tokens_per|runtime|_per_second|^step$|^epoch$/.test(k))) as Record<string, number>;
  return { steps: run?.completed_steps, final };
}

/**
 * Merges the adapter into the model in a temporary folder and returns its files as disk-backed Blobs (read while
 * they upload, never held in memory) with a merged-model card; `cleanup` removes the folder.
 */
async function mergedPushFiles(dir: string, o: { repo: string; model: string; baseModel?: string; data?: string; dtype?: string; maxShardSize?: string; backend?: string }): Promise<{ files: PushFiles; cleanup: () => void }> {
  const out = mkdtempSync(join(tmpdir(), 'peft-studio-merged-'));
  const cleanup = () => rmSync(out, { recursive: true, force: true });
  try {
    await mergeCommand([
      '--model', o.model, '--adapter', dir, '--out', out,
      ...(o.dtype ? ['--dtype', o.dtype] : []), ...(o.maxShardSize ? ['--max-shard-size', o.maxShardSize] : []), ...(o.backend ? ['--backend', o.backend] : []),
    ]);
    const adapterConfig = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    const model = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { torch_dtype?: string };
    const curves = curvesOf(dir);
    const files: PushFiles = {
      'README.md': mergedModelCard({
        baseModel: o.baseModel ?? (existsSync(o.model) ? basename(resolve(o.model)) : o.model), adapterConfig, repo: o.repo,
        task: String(adapterConfig.task_type ?? 'CAUSAL_LM'), dtype: String(model.torch_dtype ?? 'float32'), data: o.data,
        curvesFile: curves ? CURVES_FILE : undefined, ...runInfo(dir),
      }),
    };
    for (const f of readdirSync(out)) if (f !== 'README.md') files[f] = await openAsBlob(join(out, f));
    if (curves) files[CURVES_FILE] = curves;
    return { files, cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}

export async function pushCommand(argv: string[]): Promise<void> {
  const p = parseArgv(PUSH, argv);
  if (p.help) return void console.log(helpText(PUSH));
  const dir = required(p, 'adapter', 'push');
  const repo = required(p, 'repo', 'push');
  const pub = flag(p, 'public') ?? false;
  if (pub && flag(p, 'private')) throw usage('push: --private and --public exclude each other');
  const env = hubSettingsFromEnv();
  const endpoint = str(p, 'endpoint') ?? env.endpoint;
  const merged = flag(p, 'merged') ?? false;
  const model = str(p, 'model');
  if (merged && model === undefined) throw usage('push --merged needs --model (the base model folder or Hub id the adapter was trained on)');
  if (!merged && ['model', 'dtype', 'max-shard-size'].some((f) => str(p, f) !== undefined)) throw usage('--model, --dtype and --max-shard-size are for push --merged');
  const m = merged
    ? await mergedPushFiles(dir, { repo, model: model!, baseModel: str(p, 'base-model'), data: str(p, 'data-description'), dtype: str(p, 'dtype'), maxShardSize: str(p, 'max-shard-size'), backend: str(p, 'backend') })
    : { files: adapterPushFiles(dir, { repo, baseModel: str(p, 'base-model'), data: str(p, 'data-description') }), cleanup: () => {} };
  const files = m.files;
  let last = '';
  try {
    const r = await pushToHub({
      repo, files, endpoint, token: str(p, 'token') ?? env.token, private: !pub, existOk: flag(p, 'exist-ok') ?? false,
      commitTitle: merged ? 'Upload merged model from PEFT Studio' : undefined,
      onProgress: (e) => {
        const line = e.phase === 'uploadingLargeFiles' && e.fraction !== undefined ? `uploading ${e.file} ${Math.round(e.fraction * 100)}%` : e.phase;
        if (line !== last && (e.fraction === undefined || e.fraction === 1 || e.fraction === 0)) note(line);
        last = line;
      },
    });
    note(`${r.created ? 'created' : 'uploaded into'} ${pub ? 'public' : 'private'} repo ${r.repo}${merged ? ' (merged model)' : ''}: ${r.files.join(', ')}`);
    console.log(r.url);
  } finally {
    m.cleanup();
  }
}
