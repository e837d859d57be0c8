/**
 * The project store's model slice through a load: header first (the tree's model switches), progress, done;
 * a failed header read puts the previous model back; download events reach the model they belong to even
 * while another header is read; cancel and failure keep the inspected model for Retry. And the Hub settings.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { projectActions as P, runSteps, useProject } from '../src/state/project';
import { DEFAULT_HUB_URL, hubEndpoint, hubUrlProblem, settingsActions as S, useSettings } from '../src/state/settings';
import type { DataSummary, DownloadProgress, MemoryReport, ModelInfo, WorkerEvent } from '../src/worker/protocol';

const info = (name: string): ModelInfo => ({
  name, modelType: 'gpt2', className: 'GPT2LMHeadModel', task: 'CAUSAL_LM', hasTokenizer: true, weightBytes: 100,
  files: ['config.json', 'model.safetensors'], defaultTargets: ['c_attn'], sourceKind: 'hub', revision: 'main',
});
const memory = (blocking = false): MemoryReport => ({
  estimate: { weightsBytes: 1, adapterBytes: 1, optimizerBytes: 1, activationsBytes: 1, lmHeadBytes: 0, totalBytes: 4, gradientCheckpointing: false, withCheckpointingBytes: 4, largestBufferBytes: 1, largestBuffer: 'embedding' },
  checkpointing: { choice: 'auto', on: false },
  warnings: [], limits: {}, batch: 2, seqLen: 16, trainable: 1, blocking,
});
const inspected = (name: string, loadId: number, blocking = false): Extract<WorkerEvent, { type: 'inspected' }> => ({
  type: 'inspected', requestId: 1, loadId, info: info(name), memory: memory(blocking),
  inspection: { label: name, totalParams: 10, dtypes: { F32: 10 }, files: [], weightFiles: 1, downloadBytes: 100, f32Bytes: 40, bytesRead: 8, fromCache: false, commit: null, notes: [] },
});
const progress = (loaded: number): DownloadProgress => ({ file: 'model.safetensors', fileLoaded: loaded, fileTotal: 100, loaded, total: 100, bytesPerSec: 10, fromCache: false });
const err = (code = 'HUB', retryable = false) => ({ code, message: `${code} failed`, retryable });
const model = () => useProject.getState().model;

function loadReady(name: string, loadId: number) {
  P.modelLoading(name);
  P.modelInspected(inspected(name, loadId));
  P.modelLoaded(loadId, info(name));
}

describe('model slice', () => {
  beforeEach(() => useProject.setState({ model: { status: 'idle', label: '' } }));

  it('switches to the new model at its header, then downloads it', () => {
    loadReady('a', 1);
    P.modelLoading('b');
    expect(model()).toMatchObject({ status: 'loading', phase: 'inspecting', label: 'b', info: { name: 'a' } });
    P.modelInspected(inspected('b', 2));
    expect(model()).toMatchObject({ status: 'loading', phase: 'downloading', label: 'b', info: { name: 'b' }, loadId: 2 });
    expect(useProject.getState().targetText.target).toBe('c_attn');
    P.downloadProgress(2, progress(40));
    P.downloadProgress(1, progress(90)); // another load's event
    expect(model().progress?.loaded).toBe(40);
    P.modelLoaded(2, info('b'));
    expect(model()).toMatchObject({ status: 'ready', label: 'b', loadId: 2 });
    expect(model().error).toBeUndefined();
  });

  it('puts the previous model back when the header cannot be read', () => {
    loadReady('a', 1);
    P.modelLoading('bad/repo');
    P.inspectFailed(err('UNSUPPORTED_ARCHITECTURE'));
    expect(model()).toMatchObject({ status: 'ready', label: 'a', info: { name: 'a' }, failedAt: 'inspect', error: { code: 'UNSUPPORTED_ARCHITECTURE' } });
    expect(model().previous).toBeUndefined();
    // Nothing loaded before: an error state.
    useProject.setState({ model: { status: 'idle', label: '' } });
    P.modelLoading('x');
    P.inspectFailed(err());
    expect(model()).toMatchObject({ status: 'error', failedAt: 'inspect' });
  });

  it('lets a download finish under a header read of another repo', () => {
    P.modelLoading('a');
    P.modelInspected(inspected('a', 1));
    P.modelLoading('b');
    P.downloadProgress(1, progress(50));
    P.modelLoaded(1, info('a'));
    expect(model()).toMatchObject({ phase: 'inspecting', label: 'b', previous: { status: 'ready', label: 'a' } });
    P.inspectFailed(err());
    expect(model()).toMatchObject({ status: 'ready', label: 'a', error: { code: 'HUB' } });
    // A replaced header read never became the model: the one before it is what comes back.
    P.modelLoading('c');
    P.modelLoading('d');
    P.inspectFailed(err('CANCELLED'));
    expect(model()).toMatchObject({ status: 'ready', label: 'a' });
  });

  it('keeps the inspected model after a cancel or a failure, for Retry', () => {
    P.modelLoading('a');
    P.modelInspected(inspected('a', 3, true));
    expect(model().phase).toBe('confirm');
    P.downloadStarted(3);
    P.downloadProgress(3, progress(30));
    P.downloadFailed(3, err('CANCELLED'));
    expect(model()).toMatchObject({ status: 'error', phase: 'cancelled', failedAt: 'download', info: { name: 'a' }, progress: { loaded: 30 } });
    P.downloadStarted(3);
    expect(model()).toMatchObject({ status: 'loading', phase: 'downloading' });
    expect(model().error).toBeUndefined();
    P.downloadFailed(3, err('HUB', true));
    expect(model()).toMatchObject({ phase: 'failed', error: { retryable: true } });
  });
});

describe('Hub settings', () => {
  it('defaults, validates and trims the Hub URL; keeps the token in memory unless remembered', () => {
    expect(hubEndpoint()).toBe(DEFAULT_HUB_URL);
    S.setHubUrl(' http://127.0.0.1:5199/ ');
    expect(hubEndpoint()).toBe('http://127.0.0.1:5199');
    expect(hubUrlProblem('ftp://x')).toMatch(/https:\/\//);
    expect(hubUrlProblem('nope')).toMatch(/not a URL/);
    expect(hubUrlProblem('')).toBeNull();
    S.setToken('hf_abc');
    expect(useSettings.getState()).toMatchObject({ token: 'hf_abc', rememberToken: false });
  });
});

describe('run steps for fields the run fills (AdaLoRA total_step)', () => {
  const base = useProject.getState();
  it('max steps when the run is limited by steps, epochs over the loaded rows otherwise, unknown before data', () => {
    const s = (o: Partial<typeof base>) => ({ ...base, ...o });
    expect(runSteps(s({ limitBy: 'maxSteps', args: { ...base.args, maxSteps: 40 } }))).toBe(40);
    expect(runSteps(s({ limitBy: 'epochs', data: { status: 'idle' } }))).toBeNull();
    const data = { status: 'ready' as const, summary: { trainRows: 100 } as DataSummary };
    // 100 rows, batch 8 -> 13 batches; accumulation 2 -> 7 steps per epoch; 3 epochs.
    expect(runSteps(s({ limitBy: 'epochs', data, args: { ...base.args, epochs: 3, batchSize: 8, gradientAccumulationSteps: 2 } }))).toBe(21);
  });
});
