/**
 * The studio's run storage (src/engine/io/run-store.ts) on the memory backend, the same CacheBackend interface
 * the worker uses over OPFS: a checkpoint written half way (storage failing mid-write) keeps the previous one
 * as the one to resume from; rotation keeps the best; an incomplete folder is skipped, never half-loaded; a torn
 * run.json falls back to its twin; a record that says running with no page training it shows as interrupted.
 * One real round trip: a TrainingSession checkpointed through the store resumes to the same losses.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { memoryBackend, type CacheBackend } from '../src/engine/io/cache';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import {
  checkpointsToKeep, isRunId, latestStep, newRunId, RUN_RECORD, RUN_RECORD_VERSION, RunStore, summarize, type RunRecord,
} from '../src/engine/io/run-store';
import { loraConfig } from '../src/engine/peft/lora/config';
import { TrainingSession, type SessionInit } from '../src/engine/session';
import { CHECKPOINT_FORMAT, fileBytes, TRAINER_STATE, type CheckpointFiles } from '../src/engine/train/checkpoint';
import type { Example } from '../src/engine/train/data';
import { FIX } from './helpers';

/** A checkpoint's files as the engine lays them out (trainer_state.json lists the others' sizes). */
function fakeCheckpoint(step: number, bytes = 64): CheckpointFiles {
  const files: CheckpointFiles = {
    'adapter_model.safetensors': new Uint8Array(bytes).fill(step % 256),
    'adapter_config.json': `{"step": ${step}}\n`,
    'training_state.safetensors': new Uint8Array(bytes * 2).fill(7),
    'training_args.json': '{}\n',
  };
  const state = {
    global_step: step,
    log_history: Array.from({ length: step }, (_, i) => ({ step: i + 1, epoch: 0, loss: 5 - i * 0.1 })),
    best_metric: null,
    resume: { format: CHECKPOINT_FORMAT, step, files: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, fileBytes(v)])) },
  };
  files[TRAINER_STATE] = JSON.stringify(state);
  return files;
}

function record(id: string, o: Partial<RunRecord> = {}): RunRecord {
  return {
    v: RUN_RECORD_VERSION, id, name: `run ${id}`, createdAt: Date.now(), updatedAt: Date.now(), status: 'running', error: null,
    config: {
      model: 'm', baseModel: 'm', task: 'CAUSAL_LM', method: 'LORA', methodLabel: 'LoRA', methodSettings: 'r=4', data: 'd', trainExamples: 10,
      validationExamples: 2, labels: [], learningRate: 1e-3, batchSize: 2, gradientAccumulationSteps: 1, evalSteps: 2, seed: 1, maxLength: 16,
    },
    start: { task: 'CAUSAL_LM', peft: { peftType: 'LORA' }, args: { maxLength: 16 } },
    backend: 'cpu', step: 0, totalSteps: 10, durationMs: 0, checkpoints: [], latest: null, best: null, metricForBestModel: 'eval_loss',
    bestMetric: null, bestStep: null, stoppedEarly: false, loadBestModelAtEnd: false, final: {}, initialEval: null, ...o,
  };
}

/** A backend whose writes fail once `failAfter` more writes have gone through (storage full mid-checkpoint). */
function failingBackend(inner: CacheBackend) {
  const ctl = { failAfter: Infinity, writes: 0 };
  const fs: CacheBackend = {
    ...inner,
    async write(path, bytes, at) {
      if (ctl.failAfter <= 0) {
        const e = new Error('The quota has been exceeded.');
        e.name = 'QuotaExceededError';
        throw e;
      }
      ctl.failAfter -= 1;
      ctl.writes += 1;
      return inner.write(path, bytes, at);
    },
  };
  return { fs, ctl };
}

const ID = 'run-20250101-120000-abc123';

describe('run store', () => {
  it('makes run ids that sort by time and are recognised', () => {
    const a = newRunId(new Date(Date.UTC(2025, 0, 2, 3, 4, 5)), () => 0.5);
    expect(a).toMatch(/^run-20250102-030405-[a-z0-9]{6}$/);
    expect(isRunId(a)).toBe(true);
    expect(isRunId('../etc')).toBe(false);
    expect(newRunId(new Date(Date.UTC(2025, 0, 2, 3, 4, 6))) > a).toBe(true);
  });

  it('a checkpoint cut off half way keeps the previous one as the latest, and its folder is never read', async () => {
    const mem = memoryBackend();
    const { fs, ctl } = failingBackend(mem);
    const store = new RunStore(fs);
    await store.create(record(ID));
    await store.saveCheckpoint(ID, 2, fakeCheckpoint(2));
    // The storage fills up after two of the five files of the next checkpoint.
    ctl.failAfter = 2;
    await expect(store.saveCheckpoint(ID, 4, fakeCheckpoint(4))).rejects.toThrow(/quota/);
    const r = (await store.get(ID))!;
    expect(r.checkpoints.map((c) => c.step)).toEqual([2]);
    expect(latestStep(r)).toBe(2);
    const back = await store.checkpointToResume(ID);
    expect(back.step).toBe(2);
    expect(back.files['adapter_config.json']).toBe('{"step": 2}\n');
    // The partial folder was removed on failure.
    expect(await mem.list([ID])).not.toContain('checkpoint-4');

    // A crash (no cleanup at all) mid-write: the folder stays, unlisted; the next save or resume removes it.
    ctl.failAfter = Infinity;
    const partial = fakeCheckpoint(4);
    await mem.write([ID, 'checkpoint-4', 'adapter_model.safetensors'], partial['adapter_model.safetensors'] as Uint8Array, 0);
    expect((await store.checkpointToResume(ID)).step).toBe(2);
    expect(await mem.list([ID])).not.toContain('checkpoint-4');
    await store.saveCheckpoint(ID, 4, fakeCheckpoint(4));
    expect((await store.checkpointToResume(ID)).step).toBe(4);
  });

  it('run.json torn mid-write: the record is read from its twin', async () => {
    const mem = memoryBackend();
    const store = new RunStore(mem);
    await store.create(record(ID));
    await store.saveCheckpoint(ID, 2, fakeCheckpoint(2));
    await mem.write([ID, RUN_RECORD], new TextEncoder().encode('{"v": 1, "id": "run-2025'), 0);
    const r = await store.get(ID);
    expect(r?.latest).toBe('checkpoint-2');
    expect((await store.list()).runs.map((x) => x.id)).toEqual([ID]);
  });

  it('rotation keeps the newest checkpoints and never deletes the best; a limit of 1 keeps best and latest', async () => {
    const store = new RunStore(memoryBackend());
    await store.create(record(ID));
    for (const step of [2, 4, 6, 8]) await store.saveCheckpoint(ID, step, fakeCheckpoint(step), { best: step === 2, limit: 2 });
    let r = (await store.get(ID))!;
    expect(r.checkpoints.map((c) => c.step)).toEqual([2, 8]);
    expect(r.best).toBe('checkpoint-2');
    expect(r.latest).toBe('checkpoint-8');
    const r2 = await store.saveCheckpoint(ID, 10, fakeCheckpoint(10), { limit: 1 });
    expect(r2.record.checkpoints.map((c) => c.step)).toEqual([2, 10]);
    expect(r2.removed).toEqual(['checkpoint-8']);
    // A new best moves the kept one.
    r = (await store.saveCheckpoint(ID, 12, fakeCheckpoint(12), { best: true, limit: 1 })).record;
    expect(r.checkpoints.map((c) => c.step)).toEqual([12]);
    expect(r.best).toBe('checkpoint-12');
    // The same rule as the CLI's rotateCheckpoints.
    const cps = [1, 2, 3, 4, 5].map((s) => ({ step: s, dir: `checkpoint-${s}`, savedAt: 0, bytes: 0 }));
    expect([...checkpointsToKeep(cps, 3, 'checkpoint-1')].sort()).toEqual(['checkpoint-1', 'checkpoint-4', 'checkpoint-5']);
    expect([...checkpointsToKeep(cps, null, null)].length).toBe(5);
  });

  it('a second save at the same step supersedes the first without ever leaving none', async () => {
    const mem = memoryBackend();
    const store = new RunStore(mem);
    await store.create(record(ID));
    await store.saveCheckpoint(ID, 4, fakeCheckpoint(4), { best: true });
    const again = fakeCheckpoint(4);
    again['adapter_config.json'] = '{"step": 4, "again": true}\n';
    const st = JSON.parse(again[TRAINER_STATE] as string);
    st.resume.files['adapter_config.json'] = fileBytes(again['adapter_config.json']);
    again[TRAINER_STATE] = JSON.stringify(st);
    const r = (await store.saveCheckpoint(ID, 4, again, { best: true })).record;
    expect(r.checkpoints.map((c) => c.dir)).toEqual(['checkpoint-4.1']);
    expect(r.best).toBe('checkpoint-4.1');
    expect(await mem.list([ID])).not.toContain('checkpoint-4');
    expect((await store.checkpointToResume(ID)).files['adapter_config.json']).toContain('again');
  });

  it('an incomplete checkpoint (short or missing trainer_state.json) is skipped for the previous one', async () => {
    const mem = memoryBackend();
    const store = new RunStore(mem);
    await store.create(record(ID));
    await store.saveCheckpoint(ID, 2, fakeCheckpoint(2));
    await store.saveCheckpoint(ID, 4, fakeCheckpoint(4));
    // Damaged storage: the latest's weights are short.
    await mem.write([ID, 'checkpoint-4', 'adapter_model.safetensors'], new Uint8Array(10), 0);
    let back = await store.checkpointToResume(ID);
    expect(back.step).toBe(2);
    expect(back.skipped[0]).toMatch(/incomplete: adapter_model.safetensors has 10 bytes but 64 were written/);
    // The record now points at what is loadable.
    expect((await store.get(ID))!.latest).toBe('checkpoint-2');
    // No trainer_state.json at all: nothing to resume from, said clearly.
    await mem.remove([ID, 'checkpoint-2', TRAINER_STATE]);
    await expect(store.checkpointToResume(ID)).rejects.toThrow(/no complete checkpoint to resume from/);
    expect(await store.logHistory(ID)).toEqual([]);
  });

  it('status: running or paused with no page training it is interrupted; resumable before its last step', () => {
    const withCp = record(ID, { checkpoints: [{ step: 4, dir: 'checkpoint-4', savedAt: 0, bytes: 1 }], latest: 'checkpoint-4' });
    expect(summarize(withCp, false)).toMatchObject({ shownStatus: 'interrupted', resumable: true });
    expect(summarize(withCp, true)).toMatchObject({ shownStatus: 'running', resumable: false });
    expect(summarize({ ...withCp, status: 'paused' }, false)).toMatchObject({ shownStatus: 'interrupted', resumable: true });
    expect(summarize({ ...withCp, status: 'stopped' }, false)).toMatchObject({ shownStatus: 'stopped', resumable: true });
    expect(summarize({ ...withCp, status: 'failed' }, false)).toMatchObject({ shownStatus: 'failed', resumable: true });
    expect(summarize({ ...withCp, status: 'completed' }, false)).toMatchObject({ shownStatus: 'completed', resumable: false });
    expect(summarize(record(ID), false)).toMatchObject({ shownStatus: 'interrupted', resumable: false });
    const done = { ...withCp, status: 'stopped' as const, checkpoints: [{ step: 10, dir: 'checkpoint-10', savedAt: 0, bytes: 1 }], latest: 'checkpoint-10' };
    expect(summarize(done, false).resumable).toBe(false);
  });

  it('lists runs newest first, reports unreadable folders, deletes a run with its checkpoints', async () => {
    const mem = memoryBackend();
    const store = new RunStore(mem);
    const older = 'run-20240101-000000-aaaaaa';
    await store.create(record(older, { createdAt: 1 }));
    await store.create(record(ID, { createdAt: 2 }));
    await mem.write(['run-20240101-000000-bbbbbb', RUN_RECORD], new TextEncoder().encode('nonsense'), 0);
    const { runs, problems } = await store.list();
    expect(runs.map((r) => r.id)).toEqual([ID, older]);
    expect(problems).toEqual(['run-20240101-000000-bbbbbb']);
    await store.saveCheckpoint(ID, 2, fakeCheckpoint(2));
    await store.delete(ID);
    expect(await mem.list([ID])).toEqual([]);
    expect(await store.get(ID)).toBeNull();
    await expect(store.create(record(older))).rejects.toThrow(/exists already/);
  });

  it('the adapter to download: the best checkpoint with load best model at end, else the latest', async () => {
    const store = new RunStore(memoryBackend());
    await store.create(record(ID, { loadBestModelAtEnd: true }));
    await store.saveCheckpoint(ID, 2, fakeCheckpoint(2), { best: true });
    const r = (await store.saveCheckpoint(ID, 4, fakeCheckpoint(4))).record;
    expect(store.adapterCheckpoint(r)).toEqual({ dir: 'checkpoint-2', step: 2, best: true });
    expect(store.adapterCheckpoint({ ...r, loadBestModelAtEnd: false })).toEqual({ dir: 'checkpoint-4', step: 4, best: false });
  });
});

describe('a real run through the store', () => {
  beforeAll(async () => {
    await useNodeBackend('cpu');
  });

  it('checkpointed at step 4, read back and resumed, gives the losses of the run left uninterrupted', async () => {
    const { config, tensors } = loadModelDir(join(FIX, 'models', 'gpt2-tiny'));
    const train: Example[] = Array.from({ length: 12 }, (_, i) => ({ inputIds: Array.from({ length: 8 + (i % 3) }, (_, j) => 10 + ((i * 5 + j) % 7) * 9) }));
    const init: SessionInit = {
      config, weights: tensors, peft: loraConfig({ taskType: 'CAUSAL_LM', r: 2, loraAlpha: 4, loraDropout: 0.1, targetModules: ['c_attn'] }),
      data: { train, validation: train.slice(0, 4) }, args: { learningRate: 1e-2, batchSize: 4, maxSteps: 8, evalSteps: 2, seed: 3 },
    };
    const whole = await TrainingSession.create(init);
    const ref: number[] = [];
    while (!whole.done) ref.push((await whole.step()).loss);
    whole.dispose();

    const store = new RunStore(memoryBackend());
    await store.create(record(ID, { totalSteps: 8 }));
    const first = await TrainingSession.create(init);
    for (let i = 0; i < 4; i++) await first.step();
    await first.evaluate();
    await store.saveCheckpoint(ID, 4, await first.checkpoint({ outputDir: ID }), { best: first.latestIsBest, limit: 3 });
    first.dispose();

    const back = await store.checkpointToResume(ID);
    const resumed = await TrainingSession.create({ ...init, resumeFrom: back.files });
    expect(resumed.completedSteps).toBe(4);
    const rest: number[] = [];
    while (!resumed.done) rest.push((await resumed.step()).loss);
    resumed.dispose();
    expect(rest).toEqual(ref.slice(4));
  });
});

describe('a studio run recorded by the worker (TrainerRun + RunRecorder on the memory backend)', () => {
  beforeAll(async () => {
    await useNodeBackend('cpu');
  });

  async function session(args: Partial<SessionInit['args']> = {}) {
    const { config, tensors } = loadModelDir(join(FIX, 'models', 'gpt2-tiny'));
    const train: Example[] = Array.from({ length: 12 }, (_, i) => ({ inputIds: Array.from({ length: 8 }, (_, j) => 10 + ((i * 5 + j) % 7) * 9) }));
    return TrainingSession.create({
      config, weights: tensors, peft: loraConfig({ taskType: 'CAUSAL_LM', r: 2, loraAlpha: 4, targetModules: ['c_attn'] }),
      data: { train, validation: train.slice(0, 4) }, args: { learningRate: 1e-2, batchSize: 4, maxSteps: 6, evalSteps: 2, seed: 3, saveTotalLimit: 2, ...args },
    });
  }
  const info = { name: 'tiny', config: record(ID).config, start: { task: 'CAUSAL_LM', peft: { peftType: 'LORA' }, args: { maxLength: 16 } }, backend: 'cpu' };

  it('checkpoints at each evaluation and at the end, rotates, and ends completed with the best adapter', async () => {
    const { RunRecorder, useRunBackend } = await import('../src/worker/runs');
    const { Lock, TrainerRun } = await import('../src/worker/trainer');
    const mem = memoryBackend();
    useRunBackend(mem);
    const events: { type: string; [k: string]: unknown }[] = [];
    const post = (e: { type: string }) => void events.push(e as never);
    const s = await session({ loadBestModelAtEnd: true });
    const rec = await RunRecorder.create(s, info, 1, post as never);
    await new TrainerRun(1, s, new Lock(), post as never, rec).run(2);
    const r = (await new RunStore(mem).get(rec.id))!;
    expect(r.status).toBe('completed');
    expect(r.step).toBe(6);
    // Saved at 2, 4 and 6; at most 2 kept, the best always among them.
    expect(r.checkpoints.length).toBeLessThanOrEqual(2);
    expect(r.latest).toBe('checkpoint-6');
    expect(r.checkpoints.some((c) => c.dir === r.best)).toBe(true);
    expect(r.initialEval?.evalLoss).toBeGreaterThan(0);
    expect(events.filter((e) => e.type === 'runWarning')).toEqual([]);
    // load best model at end: the run ends with the best checkpoint's adapter.
    const last = events.filter((e) => e.type === 'checkpoint').pop()!;
    expect(last.step).toBe(r.bestStep);
    expect(last.best).toMatchObject({ metric: 'eval_loss', value: r.bestMetric });
    s.dispose();
  });

  it('a full storage is a warning naming what is kept; training goes on to the end', async () => {
    const { RunRecorder, useRunBackend } = await import('../src/worker/runs');
    const { Lock, TrainerRun } = await import('../src/worker/trainer');
    const mem = memoryBackend();
    const { fs, ctl } = failingBackend(mem);
    useRunBackend(fs);
    const events: { type: string; [k: string]: unknown }[] = [];
    const post = (e: { type: string }) => void events.push(e as never);
    const s = await session();
    const rec = await RunRecorder.create(s, info, 2, post as never);
    // The record and the first checkpoint (5 files + 2 record copies each) fit; then the storage is full.
    ctl.failAfter = 2 + 5 + 2 + 2;
    await new TrainerRun(2, s, new Lock(), post as never, rec).run(2);
    const warnings = events.filter((e) => e.type === 'runWarning').map((e) => String(e.message));
    expect(warnings[0]).toMatch(/The checkpoint at step 4 could not be saved: the browser's storage for this site is full .*Training continues; the run can still resume from step 2/);
    expect(events.find((e) => e.type === 'done')).toMatchObject({ reason: 'completed', step: 6 });
    const back = await new RunStore(mem).checkpointToResume(rec.id);
    expect(back.step).toBe(2);
    s.dispose();
  });
});
