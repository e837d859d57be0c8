/**
 * A SEQ_CLS run keeps its last confusion matrix in the run record (run history), so a past run shows it again:
 * in the Runs panel, and on the Live panel's evaluation point when the run is resumed.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { memoryBackend } from '../src/engine/io/cache';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { RUN_RECORD_VERSION, RunStore, summarize, type RunRecord } from '../src/engine/io/run-store';
import { loraConfig } from '../src/engine/peft/lora/config';
import { TrainingSession } from '../src/engine/session';
import type { Example } from '../src/engine/train/data';
import { runActions, useRun } from '../src/state/run';
import { FIX } from './helpers';

beforeAll(async () => {
  await useNodeBackend('cpu');
});

describe('confusion matrix in run history', () => {
  it('the record holds the last evaluation\'s matrix and per-class scores; a resumed run puts them back on its point', async () => {
    const { RunRecorder, useRunBackend } = await import('../src/worker/runs');
    const { Lock, TrainerRun } = await import('../src/worker/trainer');
    const mem = memoryBackend();
    useRunBackend(mem);
    const { config, tensors } = loadModelDir(join(FIX, 'models', 'bert-tiny-seqcls'));
    const rows: Example[] = Array.from({ length: 10 }, (_, i) => ({ inputIds: [101, 7 + i * 3, 20 + (i % 4), 102], label: i % 2 }));
    const s = await TrainingSession.create({
      config, weights: tensors, task: 'SEQ_CLS', peft: loraConfig({ taskType: 'SEQ_CLS', r: 2, loraAlpha: 4, targetModules: ['query', 'value'] }),
      data: { train: rows, validation: rows.slice(0, 7) }, args: { learningRate: 1e-2, batchSize: 4, maxSteps: 4, evalSteps: 2, seed: 3 },
    });
    const events: { type: string; [k: string]: unknown }[] = [];
    const post = (e: { type: string }) => void events.push(e as never);
    const start = { task: 'SEQ_CLS', peft: { peftType: 'LORA' }, args: { maxLength: 16 } };
    const cfg: RunRecord['config'] = {
      model: 'bert-tiny-seqcls', baseModel: 'bert-tiny-seqcls', task: 'SEQ_CLS', method: 'LORA', methodLabel: 'LoRA', methodSettings: 'r=2', data: 'd',
      trainExamples: 10, validationExamples: 7, labels: ['neg', 'pos'], learningRate: 1e-2, batchSize: 4, gradientAccumulationSteps: 1, evalSteps: 2, seed: 3, maxLength: 16,
    };
    const rec = await RunRecorder.create(s, { name: 'cls', config: cfg, start, backend: 'cpu' }, 1, post as never);
    await new TrainerRun(1, s, new Lock(), post as never, rec).run(2);
    s.dispose();

    const r = (await new RunStore(mem).get(rec.id))!;
    expect(r.v).toBe(RUN_RECORD_VERSION);
    expect(r.status).toBe('completed');
    // The last evaluation (step 4) as the Live panel got it.
    const evals = events.filter((e) => e.type === 'evalMetrics').map((e) => e.metrics as { step: number; confusion: number[][]; classes: unknown[] });
    const last = evals[evals.length - 1];
    expect(last.step).toBe(4);
    expect(r.confusion).toEqual({ step: 4, matrix: last.confusion, classes: last.classes });
    expect(r.confusion!.matrix.flat().reduce((a, b) => a + b, 0)).toBe(7);
    expect(r.confusion!.classes.map((c) => c.support)).toEqual([4, 3]);

    // Reopened (resumed) from the history: the evaluation point at step 4 carries the matrix again.
    runActions.starting('SEQ_CLS');
    runActions.onEvent({ type: 'runStarted', runId: 9, record: summarize(r, false), history: [{ step: 4, epoch: 1, eval_loss: r.final.evalLoss!, eval_accuracy: r.final.evalAccuracy }] } as never);
    const point = useRun.getState().evals.find((e) => e.step === 4)!;
    expect(point.confusion).toEqual(last.confusion);
    expect(point.classes).toEqual(last.classes);
  }, 60_000);

  it('a record from before (no confusion field) reads as none', () => {
    runActions.starting('SEQ_CLS');
    runActions.onEvent({
      type: 'runStarted', runId: 10, history: [{ step: 2, epoch: 1, eval_loss: 0.5, eval_accuracy: 0.5 }],
      record: { config: { task: 'SEQ_CLS' }, initialEval: null, totalSteps: 2, durationMs: 0 },
    } as never);
    expect(useRun.getState().evals.map((e) => e.confusion)).toEqual([undefined]);
  });
});
