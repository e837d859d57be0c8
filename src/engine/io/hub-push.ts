/**
 * Push to the Hub: create a model repo (private by default) and commit a PEFT adapter to it
 * (adapter_model.safetensors, adapter_config.json, a model card README.md, and any extra small files), with
 * @huggingface/hub's createRepo and commitIter (preupload, LFS batch + PUT for the weights, NDJSON commit).
 * DOM-free: the studio and the CLI both call pushToHub.
 *
 * The token is never handed to the library (which would also insist on the "hf_" prefix): our fetch adds it to
 * requests for the Hub's own origin and strips it from any other (the LFS storage the weights are PUT to).
 * Other Authorization headers the library sets for other origins (Xet CAS write tokens) pass through untouched.
 */
import { commitIter, createRepo, HubApiError } from '@huggingface/hub';
import { EngineError } from '../errors';
import { HubError, originOf, type FetchLike } from './http-source';
import { normalizeEndpoint, parseRepoId } from './hub';

/**
 * What to commit, by path: an adapter (adapter_model.safetensors, adapter_config.json, extras) or a merged model
 * folder (config.json, shards + index, tokenizer files). A Blob may be disk-backed (Node's openAsBlob, a File from
 * OPFS), so a merged model's shards are read while they upload and never held in memory.
 */
export interface PushFiles {
  /** The model card; modelCard() or mergedModelCard() writes one. */
  'README.md': string;
  [name: string]: Uint8Array | string | Blob;
}

export interface PushOptions {
  /** owner/name */
  repo: string;
  files: PushFiles;
  token: string | null | undefined;
  endpoint?: string | null;
  /** Default true: only the owner (and their organisation) can see it. */
  private?: boolean;
  /** Upload into the repo if it exists already (else a 409 is a 'RepoExists' HubError). */
  existOk?: boolean;
  commitTitle?: string;
  fetch?: FetchLike;
  signal?: AbortSignal;
  onProgress?: (p: PushProgress) => void;
}

export interface PushProgress {
  phase: 'creating' | 'preuploading' | 'uploadingLargeFiles' | 'committing';
  /** Share of `file` uploaded (0..1) during uploadingLargeFiles. */
  fraction?: number;
  /** The weights file being uploaded. */
  file?: string;
}

export interface PushResult {
  repo: string;
  /** The repo page. */
  url: string;
  /** False when it existed and was uploaded into (existOk). */
  created: boolean;
  commitUrl: string | null;
  files: string[];
}

/** A fetch that sends the token to the Hub's origin only. */
function tokenFetch(endpoint: string, token: string, base: FetchLike): typeof fetch {
  const hub = new URL(endpoint).origin;
  return (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = String(input instanceof Request ? input.url : input);
    const headers = new Headers(init.headers);
    if (originOf(url) === hub) headers.set('Authorization', `Bearer ${token}`);
    else if ((headers.get('authorization') ?? '').includes(token) || headers.get('authorization') === 'Bearer undefined') headers.delete('authorization');
    return base(url, { ...init, headers });
  }) as typeof fetch;
}

const tokenPage = (endpoint: string) => `${endpoint}/settings/tokens`;

/** Maps what the library or fetch threw to a HubError that says what to do. */
function pushError(e: unknown, o: { endpoint: string; repo: string; step: 'create' | 'upload' }): EngineError {
  if (e instanceof EngineError) return e;
  if ((e as Error)?.name === 'AbortError') return new EngineError('CANCELLED', `Pushing to ${o.repo} was cancelled.`);
  if (!(e instanceof HubApiError)) {
    return new HubError(`Could not reach ${o.endpoint} (${(e as Error)?.message ?? String(e)}): check the Hub URL and your connection, then retry.`, { retryable: true });
  }
  const s = e.statusCode;
  const said = e.message.replace(/\. URL: .*$/s, '');
  const owner = o.repo.split('/')[0];
  if (s === 401) {
    return new HubError(`${o.endpoint} rejected the access token (HTTP 401: ${said}): it is invalid or expired. Create a token with write access at ${tokenPage(o.endpoint)} and paste it again.`, { status: s });
  }
  if (s === 403) {
    return new HubError(`This token may not ${o.step === 'create' ? `create repos under "${owner}"` : `write to ${o.repo}`} (HTTP 403: ${said}). Use a token with write access (a fine-grained token needs write permission on ${owner}), from ${tokenPage(o.endpoint)}.`, { status: s });
  }
  if (s === 409) {
    return new HubError(`${o.repo} already exists on ${o.endpoint}. Upload into it (its adapter files and README.md are replaced), or choose another name.`, { status: s, hubCode: 'RepoExists' });
  }
  if (s === 404) {
    return new HubError(`${o.repo} was not found on ${o.endpoint} (HTTP 404): it may have been deleted, or the token cannot see it.`, { status: s, hubCode: 'RepoNotFound' });
  }
  if (s === 429) return new HubError(`${o.endpoint} is rate-limiting requests (HTTP 429); wait a minute, then retry.`, { status: s, retryable: true });
  return new HubError(`${o.step === 'create' ? 'Creating' : 'Uploading to'} ${o.repo} failed: HTTP ${s} (${said})${s >= 500 ? '; retry in a moment' : ''}.`, { status: s, retryable: s >= 500 });
}

/** Creates the repo (unless it exists and existOk) and commits the files; progress as it goes. */
export async function pushToHub(o: PushOptions): Promise<PushResult> {
  const endpoint = normalizeEndpoint(o.endpoint);
  const token = o.token?.trim();
  if (!token) {
    throw new EngineError('BAD_ARGUMENT', `Pushing needs an access token with write access: create one at ${tokenPage(endpoint)}, then paste it under Hub settings (CLI: --token or HF_TOKEN).`);
  }
  const ref = parseRepoId(o.repo);
  if (!ref.repo.includes('/') || ref.revision !== 'main') {
    throw new EngineError('BAD_ARGUMENT', `"${o.repo}" is not a repo name to create: write it as owner/name (your user name or an organisation, then the new repo's name).`);
  }
  const repo = ref.repo;
  const fetchImpl = tokenFetch(endpoint, token, o.fetch ?? ((i, init) => fetch(i, init)));
  const url = `${endpoint}/${repo}`;
  let created = true;
  o.onProgress?.({ phase: 'creating' });
  try {
    // The types ask for credentials; fetchImpl supplies them (see the top of the file).
    const viaFetch = {} as { accessToken: string };
    await createRepo({ repo: { type: 'model', name: repo }, visibility: o.private === false ? 'public' : 'private', hubUrl: endpoint, fetch: fetchImpl, ...viaFetch });
  } catch (e) {
    const err = pushError(e, { endpoint, repo, step: 'create' });
    if (!(o.existOk && err instanceof HubError && err.hubCode === 'RepoExists')) throw err;
    created = false;
  }
  const names = Object.keys(o.files);
  const blob = (v: Uint8Array | string | Blob) => (v instanceof Blob ? v : new Blob([typeof v === 'string' ? v : (v as Uint8Array<ArrayBuffer>)]));
  try {
    const it = commitIter({
      repo: { type: 'model', name: repo },
      operations: names.map((path) => ({ operation: 'addOrUpdate' as const, path, content: blob(o.files[path]) })),
      title: o.commitTitle ?? 'Upload PEFT adapter from PEFT Studio',
      hubUrl: endpoint, fetch: fetchImpl, abortSignal: o.signal,
    });
    let r = await it.next();
    while (!r.done) {
      const ev = r.value;
      if (ev.event === 'phase') o.onProgress?.({ phase: ev.phase });
      else if (ev.state === 'uploading' && typeof o.files[ev.path] !== 'string') o.onProgress?.({ phase: 'uploadingLargeFiles', fraction: ev.progress, file: ev.path });
      r = await it.next();
    }
    return { repo, url, created, commitUrl: r.value?.commit.url ?? null, files: names };
  } catch (e) {
    throw pushError(e, { endpoint, repo, step: 'upload' });
  }
}

export interface ModelCardInfo {
  /** adapter_config.json, parsed. */
  config: Record<string, unknown>;
  /** Overrides config.base_model_name_or_path (a local path there is not a Hub id). */
  baseModel?: string;
  task: string;
  /** One line or a short paragraph: what the model was trained on. */
  data?: string;
  steps?: number;
  /** The metrics after the last step (eval_loss, eval_accuracy, loss, ...). */
  final?: Record<string, number>;
  best?: { metric: string; value: number; step?: number | null };
  labels?: string[];
  /** The repo it is pushed to, for the usage snippet. */
  repo?: string;
  /** A chart of the run's curves pushed beside the card (e.g. training_curves.svg), embedded by a relative link. */
  curvesFile?: string;
}

const METHOD_LABEL: Record<string, string> = {
  LORA: 'LoRA', IA3: 'IA3', ADALORA: 'AdaLoRA', PROMPT_TUNING: 'Prompt tuning', P_TUNING: 'P-tuning', PREFIX_TUNING: 'Prefix tuning',
};
const TASK: Record<string, { auto: string; pipeline: string }> = {
  CAUSAL_LM: { auto: 'AutoModelForCausalLM', pipeline: 'text-generation' },
  SEQ_CLS: { auto: 'AutoModelForSequenceClassification', pipeline: 'text-classification' },
  TOKEN_CLS: { auto: 'AutoModelForTokenClassification', pipeline: 'token-classification' },
  SEQ_2_SEQ_LM: { auto: 'AutoModelForSeq2SeqLM', pipeline: 'text2text-generation' },
};

/** A Hub id (owner/name or a legacy single name), not a local path: only those go into base_model. */
function isHubId(s: string): boolean {
  if (/^[./~]|\\|:/.test(s)) return false;
  try {
    return parseRepoId(s).revision === 'main';
  } catch {
    return false;
  }
}

const fmt = (v: number) => (Number.isInteger(v) ? String(v) : Math.abs(v) >= 0.01 ? v.toFixed(4) : v.toPrecision(4));

/** The README.md of a pushed adapter: YAML front matter the Hub reads (library_name: peft, base_model, tags), what it is, metrics, usage. */
export function modelCard(i: ModelCardInfo): string {
  const base = i.baseModel ?? String(i.config.base_model_name_or_path ?? '');
  const peftType = String(i.config.peft_type ?? 'LORA');
  const method = peftType === 'LORA' && i.config.use_dora ? 'DoRA' : (METHOD_LABEL[peftType] ?? peftType);
  const task = TASK[i.task] ?? TASK.CAUSAL_LM;
  const hub = base !== '' && isHubId(base);
  const baseId = base || 'path/to/base-model';
  const tags = ['peft-studio', method.toLowerCase().replace(/[^a-z0-9]+/g, '-'), ...(hub ? [`base_model:adapter:${base}`] : [])];
  const metrics = Object.entries(i.final ?? {}).filter(([, v]) => Number.isFinite(v));
  const cls = i.task !== 'CAUSAL_LM';
  const labels = cls && i.labels?.length ? `, num_labels=${i.labels.length}` : '';
  return [
    '---',
    ...(hub ? [`base_model: ${JSON.stringify(base)}`] : []),
    'library_name: peft',
    `pipeline_tag: ${task.pipeline}`,
    'tags:',
    ...tags.map((t) => `- ${JSON.stringify(t)}`),
    '---',
    '',
    `# ${method} adapter for ${base || 'its base model'}`,
    '',
    `A PEFT ${method} adapter (task ${i.task}) trained in PEFT Studio${i.steps !== undefined ? ` for ${i.steps} optimizer step${i.steps === 1 ? '' : 's'}` : ''}.`,
    `Base model: ${hub ? `[\`${base}\`](https://huggingface.co/${base})` : `\`${baseId}\``}.`,
    ...(hub || !base ? [] : ['The base model was a local folder: load the same weights before the adapter.']),
    '',
    ...(i.data ? ['## Data', '', i.data, ''] : []),
    ...(metrics.length || i.best
      ? [
          '## Results',
          '',
          ...(metrics.length ? ['| metric | final |', '|---|---|', ...metrics.map(([k, v]) => `| ${k} | ${fmt(v)} |`), ''] : []),
          ...(i.best ? [`Best ${i.best.metric}: ${fmt(i.best.value)}${i.best.step != null ? ` at step ${i.best.step}` : ''}.`, ''] : []),
        ]
      : []),
    ...(i.curvesFile ? ['## Training curves', '', `![Training and evaluation curves](${i.curvesFile})`, ''] : []),
    ...(i.labels?.length ? ['## Labels', '', i.labels.map((l, n) => `${n}: ${l}`).join(', '), ''] : []),
    '## Usage',
    '',
    '```python',
    `from transformers import ${task.auto}, AutoTokenizer`,
    'from peft import PeftModel',
    '',
    `base = ${task.auto}.from_pretrained(${JSON.stringify(baseId)}${labels})`,
    `tokenizer = AutoTokenizer.from_pretrained(${JSON.stringify(baseId)})`,
    `model = PeftModel.from_pretrained(base, ${JSON.stringify(i.repo ?? 'owner/this-repo')})`,
    ...(i.task === 'CAUSAL_LM' || i.task === 'SEQ_2_SEQ_LM'
      ? [`out = model.generate(**tokenizer(${i.task === 'CAUSAL_LM' ? '"Hello,"' : '"Your source text here"'}, return_tensors="pt"), max_new_tokens=40)`, 'print(tokenizer.decode(out[0], skip_special_tokens=True))']
      : ['print(model(**tokenizer("Your text here", return_tensors="pt")).logits.argmax(-1))']),
    '```',
    '',
    '## Adapter config',
    '',
    '```json',
    JSON.stringify(i.config, null, 2),
    '```',
    '',
  ].join('\n');
}

export interface MergedCardInfo {
  /** The base model (a Hub id, or a local folder's name). */
  baseModel: string;
  /** adapter_config.json of the adapter that was merged, parsed. */
  adapterConfig: Record<string, unknown>;
  task: string;
  /** dtype of the written weights (F32, F16, BF16). */
  dtype: string;
  repo?: string;
  data?: string;
  steps?: number;
  final?: Record<string, number>;
  curvesFile?: string;
}

/** The README.md of a pushed merged model: a plain transformers model, the base and the adapter merged into it. */
export function mergedModelCard(i: MergedCardInfo): string {
  const peftType = String(i.adapterConfig.peft_type ?? 'LORA');
  const method = peftType === 'LORA' && i.adapterConfig.use_dora ? 'DoRA' : (METHOD_LABEL[peftType] ?? peftType);
  const task = TASK[i.task] ?? TASK.CAUSAL_LM;
  const hub = isHubId(i.baseModel);
  const repo = i.repo ?? 'owner/this-repo';
  const metrics = Object.entries(i.final ?? {}).filter(([, v]) => Number.isFinite(v));
  return [
    '---',
    ...(hub ? [`base_model: ${JSON.stringify(i.baseModel)}`, 'base_model_relation: finetune'] : []),
    'library_name: transformers',
    `pipeline_tag: ${task.pipeline}`,
    'tags:',
    ...['peft-studio', 'merged', method.toLowerCase().replace(/[^a-z0-9]+/g, '-')].map((t) => `- ${JSON.stringify(t)}`),
    '---',
    '',
    `# ${i.baseModel} with a merged ${method} adapter`,
    '',
    `The base model ${hub ? `[\`${i.baseModel}\`](https://huggingface.co/${i.baseModel})` : `\`${i.baseModel}\``} with a PEFT ${method} adapter (task ${i.task}) trained in PEFT Studio${i.steps !== undefined ? ` for ${i.steps} optimizer step${i.steps === 1 ? '' : 's'}` : ''}, merged into its weights as PEFT's \`merge_and_unload()\` does (${i.dtype}). It loads as a plain transformers model: no PEFT needed.`,
    '',
    ...(i.data ? ['## Data', '', i.data, ''] : []),
    ...(metrics.length ? ['## Results', '', '| metric | final |', '|---|---|', ...metrics.map(([k, v]) => `| ${k} | ${fmt(v)} |`), ''] : []),
    ...(i.curvesFile ? ['## Training curves', '', `![Training and evaluation curves](${i.curvesFile})`, ''] : []),
    '## Usage',
    '',
    '```python',
    `from transformers import ${task.auto}, AutoTokenizer`,
    '',
    `model = ${task.auto}.from_pretrained(${JSON.stringify(repo)})`,
    `tokenizer = AutoTokenizer.from_pretrained(${JSON.stringify(repo)})`,
    ...(i.task === 'CAUSAL_LM' || i.task === 'SEQ_2_SEQ_LM'
      ? [`out = model.generate(**tokenizer(${i.task === 'CAUSAL_LM' ? '"Hello,"' : '"Your source text here"'}, return_tensors="pt"), max_new_tokens=40)`, 'print(tokenizer.decode(out[0], skip_special_tokens=True))']
      : ['print(model(**tokenizer("Your text here", return_tensors="pt")).logits.argmax(-1))']),
    '```',
    '',
    '## Merged adapter config',
    '',
    '```json',
    JSON.stringify(i.adapterConfig, null, 2),
    '```',
    '',
  ].join('\n');
}
