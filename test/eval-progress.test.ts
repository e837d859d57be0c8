/**
 * An evaluation reports how far it is: loss batches done of total for every task, then (SEQ_2_SEQ_LM) rows
 * generated of total; the run store shows the latest report until the evaluation's metrics arrive.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import type { TaskType } from '../src/engine/models/types';
import { loraConfig } from '../src/engine/peft/lora/config';
import { TrainingSession } from '../src/engine/session';
import type { Example } from '../src/engine/train/data';
import type { EvalProgress } from '../src/engine/train/evaluate';
import { runActions, useRun } from '../src/state/run';
import { FIX } from './helpers';

const ids = (i: number, n: number) => Array.from({ length: n }, (_, j) => 5 + ((i * 7 + j * 3) % 90));

/** Rows for each task on its tiny fixture model. */
function rowsFor(task: TaskType, n: number): Example[] {
  return Array.from({ length: n }, (_, i) => {
    const inputIds = ids(i, 6 + (i % 3));
    if (task === 'SEQ_CLS') return { inputIds, label: i % 2 };
    if (task === 'TOKEN_CLS') return { inputIds, labels: inputIds.map((_, j) => (j === 0 ? -100 : (i + j) % 5)) };
    if (task === 'SEQ_2_SEQ_LM') return { inputIds, labels: [...ids(i + 1, 3 + (i % 2)), 1] };
    return { inputIds };
  });
}

const CASES: { task: TaskType; model: string; targets: string[] }[] = [
  { task: 'CAUSAL_LM', model: 'gpt2-tiny', targets: ['c_attn'] },
  { task: 'SEQ_CLS', model: 'bert-tiny-seqcls', targets: ['query', 'value'] },
  { task: 'TOKEN_CLS', model: 'bert-tiny-tokcls', targets: ['query', 'value'] },
  { task: 'SEQ_2_SEQ_LM', model: 't5-tiny', targets: ['q', 'v'] },
];

describe('evaluation progress', () => {
  beforeAll(async () => {
    await useNodeBackend('cpu');
  });

  for (const c of CASES) {
    it(`${c.task}: one report per batch (0 .. ceil(rows / batch))${c.task === 'SEQ_2_SEQ_LM' ? ', then one per generated row' : ''}`, async () => {
      const { config, tensors } = loadModelDir(join(FIX, 'models', c.model));
      const rows = rowsFor(c.task, 7);
      const session = await TrainingSession.create({
        config, weights: tensors, task: c.task, peft: loraConfig({ taskType: c.task, r: 2, loraAlpha: 4, targetModules: c.targets }),
        data: { train: rows, validation: rows }, args: { batchSize: 3, maxSteps: 2, seed: 1 },
        ...(c.task === 'SEQ_CLS' ? { numLabels: 2 } : {}),
      });
      try {
        const seen: EvalProgress[] = [];
        const m = await session.evaluate(undefined, (p) => seen.push({ ...p }));
        expect(m.rows).toBe(7);
        // 7 rows in batches of 3: 3 batches.
        const batches = seen.filter((p) => p.phase === 'batches');
        expect(batches).toEqual([0, 1, 2, 3].map((done) => ({ phase: 'batches', done, total: 3 })));
        const gen = seen.filter((p) => p.phase === 'generation');
        if (c.task === 'SEQ_2_SEQ_LM') {
          expect(gen).toEqual(Array.from({ length: 8 }, (_, done) => ({ phase: 'generation', done, total: 7 })));
          // Generation comes after the loss batches.
          expect(seen.indexOf(gen[0])).toBe(batches.length);
        } else expect(gen).toEqual([]);
        // A limited evaluation counts only its rows.
        const part: EvalProgress[] = [];
        await session.evaluate(4, (p) => part.push({ ...p }));
        expect(part.filter((p) => p.phase === 'batches').map((p) => `${p.done}/${p.total}`)).toEqual(['0/2', '1/2', '2/2']);
      } finally {
        session.dispose();
      }
    }, 60_000);
  }

  it('the run store shows the evaluation in progress until its metrics arrive, for the run on show only', () => {
    runActions.starting('CAUSAL_LM');
    runActions.onEvent({ type: 'state', runId: 5, state: 'running' });
    expect(useRun.getState().evalProgress).toBeNull();
    runActions.onEvent({ type: 'evalProgress', runId: 5, step: 10, phase: 'batches', done: 2, total: 9 });
    expect(useRun.getState().evalProgress).toEqual({ step: 10, phase: 'batches', done: 2, total: 9 });
    // Another run's report is not this one's.
    runActions.onEvent({ type: 'evalProgress', runId: 4, step: 3, phase: 'batches', done: 1, total: 2 });
    expect(useRun.getState().evalProgress?.step).toBe(10);
    runActions.onEvent({ type: 'evalMetrics', runId: 5, metrics: { step: 10, evalLoss: 2, accuracy: 0.5 } });
    expect(useRun.getState().evalProgress).toBeNull();
    expect(useRun.getState().evals).toHaveLength(1);
    runActions.onEvent({ type: 'evalProgress', runId: 5, step: 20, phase: 'batches', done: 0, total: 9 });
    runActions.onEvent({ type: 'done', runId: 5, reason: 'stopped' } as never);
    expect(useRun.getState().evalProgress).toBeNull();
  });
});
