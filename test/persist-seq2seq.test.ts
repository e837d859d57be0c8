/**
 * A SEQ_2_SEQ_LM project across a reload (src/state/persist.ts): the task, the built-in T5 (ModelRef builtin with
 * id sotu-t5) and the generation eval rows come back (an upload's source / target columns are kept with the upload); an unknown built-in model or a
 * bad row count is dropped with a warning.
 */
import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_ARGS, useProject, type ProjectState } from '../src/state/project';
import { loadSaved, PREFIX, ProjectPersistence, savedPatch, snapshotOf, type StorageLike } from '../src/state/persist';

class MemoryStorage implements StorageLike {
  readonly map = new Map<string, string>();
  getItem(k: string) {
    return this.map.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.map.set(k, v);
  }
  removeItem(k: string) {
    this.map.delete(k);
  }
  get length() {
    return this.map.size;
  }
  key(i: number) {
    return [...this.map.keys()][i] ?? null;
  }
}

const seq2seq: ProjectState = {
  ...useProject.getState(),
  task: 'SEQ_2_SEQ_LM',
  modelRef: { kind: 'builtin', id: 'sotu-t5' },
  dataRef: { kind: 'upload', id: 'u1', name: 'pairs.csv' },
  mapping: { kind: 'prompt-response', prompt: 'en', response: 'de' },
  args: { ...DEFAULT_ARGS, generationEvalRows: 16 },
};

describe('a SEQ_2_SEQ_LM project is kept', () => {
  it('task, built-in T5 and generation eval rows round-trip', () => {
    const st = new MemoryStorage();
    new ProjectPersistence(() => st, () => undefined).save(seq2seq);
    const warn = vi.fn();
    const saved = loadSaved(st, warn);
    expect(warn).not.toHaveBeenCalled();
    expect(saved).toEqual(snapshotOf(seq2seq));
    expect(savedPatch(saved)).toMatchObject({
      task: 'SEQ_2_SEQ_LM', modelRef: { kind: 'builtin', id: 'sotu-t5' },
      args: expect.objectContaining({ generationEvalRows: 16 }),
    });
  });

  it('an unknown built-in model and a bad row count are dropped with a warning', () => {
    const st = new MemoryStorage();
    new ProjectPersistence(() => st, () => undefined).save(seq2seq);
    const key = [...st.map.keys()].find((k) => st.map.get(k)!.includes('sotu-t5'))!;
    expect(key.startsWith(PREFIX)).toBe(true);
    st.setItem(key, st.getItem(key)!.replace('sotu-t5', 'sotu-xl'));
    const training = [...st.map.keys()].find((k) => st.map.get(k)!.includes('generationEvalRows'))!;
    st.setItem(training, st.getItem(training)!.replace('"generationEvalRows":16', '"generationEvalRows":0'));
    const warn = vi.fn();
    const saved = loadSaved(st, warn);
    const text = warn.mock.calls.join('\n');
    expect(text).toMatch(/built-in model must be one of sotu-t5/);
    expect(text).toMatch(/generation eval rows is out of range/);
    expect(savedPatch(saved).args?.generationEvalRows).toBe(DEFAULT_ARGS.generationEvalRows);
  });
});
