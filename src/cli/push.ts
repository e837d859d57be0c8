/**
 * `push --adapter DIR --repo owner/name [--private|--public] [--exist-ok] [--token T] [--endpoint URL]`: creates a
 * model repo on the Hub (private by default) and uploads the adapter folder's adapter_model.safetensors and
 * adapter_config.json (plus labels.json / chat_template.jinja when present, and training_curves.svg drawn from metrics.jsonl) with a model card README.md made from
 * the adapter config and, for a `train --out` folder, run.json's task, steps and metrics.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from '../engine/errors';
import { CURVES_FILE, curvesFromRows, trainingCurvesSvg } from '../engine/export/chart-svg';
import { modelCard, pushToHub, type PushFiles } from '../engine/io/hub-push';
import { hubSettingsFromEnv } from '../engine/io/node-source';
import { flag, helpText, note, parseArgv, required, str, usage, type CommandSpec } from './common';

export const PUSH: CommandSpec = {
  name: 'push',
  summary: 'Creates a Hub model repo (private by default) and uploads a PEFT adapter folder with a model card.',
  usage: 'npm run cli -- push --adapter DIR --repo owner/name [--public] [--exist-ok] [--token hf_...] [--endpoint URL]',
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

export async function pushCommand(argv: string[]): Promise<void> {
  const p = parseArgv(PUSH, argv);
  if (p.help) return void console.log(helpText(PUSH));
  const dir = required(p, 'adapter', 'push');
  const repo = required(p, 'repo', 'push');
  const pub = flag(p, 'public') ?? false;
  if (pub && flag(p, 'private')) throw usage('push: --private and --public exclude each other');
  const env = hubSettingsFromEnv();
  const endpoint = str(p, 'endpoint') ?? env.endpoint;
  const files = adapterPushFiles(dir, { repo, baseModel: str(p, 'base-model'), data: str(p, 'data-description') });
  let last = '';
  const r = await pushToHub({
    repo, files, endpoint, token: str(p, 'token') ?? env.token, private: !pub, existOk: flag(p, 'exist-ok') ?? false,
    onProgress: (e) => {
      const line = e.phase === 'uploadingLargeFiles' && e.fraction !== undefined ? `uploading adapter_model.safetensors ${Math.round(e.fraction * 100)}%` : e.phase;
      if (line !== last && (e.fraction === undefined || e.fraction === 1 || e.fraction === 0)) note(line);
      last = line;
    },
  });
  note(`${r.created ? 'created' : 'uploaded into'} ${pub ? 'public' : 'private'} repo ${r.repo}: ${r.files.join(', ')}`);
  console.log(r.url);
}
