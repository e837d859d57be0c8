/**
 * Checkpoints and resume: a run stopped at step K and continued from its checkpoint gives the losses and the
 * adapter of the same run left uninterrupted (data order, dropout masks, AdamW moments, schedule, AdaLoRA's
 * importance scores and P-tuning's encoder all carried over), on cpu and wasm. Bad checkpoints are refused.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir } from '../src/engine/io/node-files';
import { readSafetensors } from '../src/engine/io/safetensors';
import { adaLoraConfig } from '../src/engine/peft/adalora/config';
import { loraConfig } from '../src/engine/peft/lora/config';
import { pTuningConfig } from '../src/engine/peft/p-tuning/config';
import { TrainingSession, type SessionInit } from '../src/engine/session';
import { TRAINER_STATE, TRAINING_STATE_WEIGHTS, type CheckpointFiles } from '../src/engine/train/checkpoint';
import type { Example } from '../src/engine/train/data';
import { BACKENDS, FIX, maxAbsDiff, rejection } from './helpers';

function clmData(n: number): Example[] {
  return Array.from({ length: n }, (_, i) => ({ inputIds: Array.from({ length: 10 + (i % 5) }, (_, j) => 10 + ((i * 3 + j) % 9) * 11) }));
}
function clsData(n: number): Example[] {
  return Array.from({ length: n }, (_, i) => {
    const label = i % 2;
    const ids = Array.from({ length: 8 }, (_, j) => 20 + ((i * 7 + j * 13) % 300));
    if (label) ids[3 + (i % 4)] = 500;
    return { inputIds: [101, ...ids], label };
  });
}

type Setup = { name: string; model: string; init: Partial<SessionInit> };

const SETUPS: Setup[] = [
  {
    // Dropout on: the resumed run must draw the same masks. 20 examples / batch 6: epochs end mid-run (reshuffles).
    name: 'LoRA with dropout, CAUSAL_LM on GPT-2, linear schedule with warmup',
    model: 'gpt2-tiny',
    init: {
      peft: loraConfig({ taskType: 'CAUSAL_LM', r: 4, loraAlpha: 8, loraDropout: 0.1, targetModules: ['c_attn', 'c_fc'] }),
      data: { train: clmData(20), validation: clmData(6) },
      args: { learningRate: 5e-3, batchSize: 6, maxSteps: 10, warmupSteps: 2, scheduler: 'linear', evalSteps: 2, seed: 7 },
    },
  },
  {
    name: 'AdaLoRA (importance scores and budget schedule), CAUSAL_LM on LLaMA',
    model: 'llama-tiny',
    init: {
      peft: adaLoraConfig({ taskType: 'CAUSAL_LM', initR: 6, targetR: 2, tinit: 1, tfinal: 3, deltaT: 1, totalStep: 12, targetModules: ['q_proj', 'v_proj'] }),
      data: { train: clmData(16) },
      args: { learningRate: 1e-2, batchSize: 4, maxSteps: 12, scheduler: 'constant', seed: 3 },
    },
  },
  {
    name: 'P-tuning (MLP encoder), CAUSAL_LM on GPT-2, gradient accumulation',
    model: 'gpt2-tiny',
    init: {
      peft: pTuningConfig({ taskType: 'CAUSAL_LM', numVirtualTokens: 4, encoderHiddenSize: 16 }),
      data: { train: clmData(12) },
      args: { learningRate: 1e-2, batchSize: 4, gradientAccumulationSteps: 2, maxSteps: 8, scheduler: 'cosine', seed: 5 },
    },
  },
  {
    name: 'LoRA, SEQ_CLS on BERT (classifier in modules_to_save), two epochs',
    model: 'bert-tiny-seqcls',
    init: {
      peft: loraConfig({ taskType: 'SEQ_CLS', r: 4, loraAlpha: 8, targetModules: ['query', 'value'] }),
      data: { train: clsData(24), validation: clsData(8) },
      args: { learningRate: 2e-2, batchSize: 8, epochs: 3, scheduler: 'linear', evalSteps: 3, seed: 2 },
    },
  },
];

function create(model: string, init: Partial<SessionInit>): Promise<TrainingSession> {
  const { config, tensors } = loadModelDir(join(FIX, 'models', model));
  return TrainingSession.create({ config, weights: tensors, data: { train: [] }, ...init } as SessionInit);
}

/** Steps to the end (or `until`), evaluating on the run's eval steps as the CLI and the worker do. */
async function run(s: TrainingSession, until = Infinity): Promise<number[]> {
  const losses: number[] = [];
  while (!s.done && s.completedSteps < until) {
    const m = await s.step();
    losses.push(m.loss);
    if (s.hasValidation && s.args.evalSteps > 0 && m.step % s.args.evalSteps === 0) await s.evaluate();
  }
  return losses;
}

const adapterValues = (f: CheckpointFiles | { 'adapter_model.safetensors': Uint8Array }) =>
  readSafetensors(f['adapter_model.safetensors'] as Uint8Array).tensors;

describe.each(BACKENDS)('resume from a checkpoint continues the run exactly on %s', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  it.each(SETUPS)('$name', async ({ model, init }) => {
    const whole = await create(model, init);
    let wholeLosses: number[];
    let wholeAdapter: Map<string, { data: ArrayLike<number> }>;
    let wholeHistory: unknown;
    try {
      wholeLosses = await run(whole);
      wholeAdapter = adapterValues(await whole.exportAdapter());
      wholeHistory = whole.logHistory;
    } finally {
      whole.dispose();
    }
    // Per-shape caches (causal masks) outlive a session by design; the first run filled them.
    const baseline = tf.memory().numTensors;

    const k = Math.floor(wholeLosses.length / 2) + 1;
    const first = await create(model, init);
    let ckpt: CheckpointFiles;
    let firstLosses: number[];
    try {
      firstLosses = await run(first, k);
      ckpt = await first.checkpoint();
    } finally {
      first.dispose();
    }
    expect(tf.memory().numTensors).toBe(baseline);
    const state = JSON.parse(ckpt[TRAINER_STATE] as string);
    expect(state.global_step).toBe(k);
    expect(state.log_history.filter((r: { loss?: number }) => r.loss !== undefined)).toHaveLength(k);

    const resumed = await create(model, { ...init, resumeFrom: ckpt });
    try {
      expect(resumed.completedSteps).toBe(k);
      const rest = await run(resumed);
      const all = [...firstLosses, ...rest];
      expect(all).toHaveLength(wholeLosses.length);
      expect(maxAbsDiff(all, wholeLosses)).toBeLessThanOrEqual(1e-5);
      const got = adapterValues(await resumed.exportAdapter());
      expect([...got.keys()].sort()).toEqual([...wholeAdapter.keys()].sort());
      for (const [key, t] of wholeAdapter) expect(maxAbsDiff(got.get(key)!.data, t.data), key).toBeLessThanOrEqual(1e-6);
      expect(JSON.parse(JSON.stringify(resumed.logHistory))).toEqual(JSON.parse(JSON.stringify(wholeHistory)));
    } finally {
      resumed.dispose();
    }
    expect(tf.memory().numTensors).toBe(baseline);
  });
});

describe('checkpoints', () => {
  beforeAll(async () => {
    await useNodeBackend('wasm');
  });
  const setup = SETUPS[0];

  it("are Trainer-shaped: trainer_state.json, training_args.json, the PEFT adapter, best metric by eval_loss", async () => {
    const s = await create(setup.model, setup.init);
    try {
      await run(s, 4);
      const f = await s.checkpoint({ outputDir: 'out', bestModelCheckpoint: 'out/checkpoint-4' });
      expect(Object.keys(f).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'trainer_state.json', 'training_args.json', 'training_state.safetensors']);
      const st = JSON.parse(f['trainer_state.json'] as string);
      expect(st).toMatchObject({ global_step: 4, max_steps: 10, eval_steps: 2, train_batch_size: 6, logging_steps: 1, best_model_checkpoint: 'out/checkpoint-4' });
      const evals = st.log_history.filter((r: { eval_loss?: number }) => r.eval_loss !== undefined);
      expect(evals.map((r: { step: number }) => r.step)).toEqual([2, 4]);
      expect(st.best_metric).toBe(Math.min(...evals.map((r: { eval_loss: number }) => r.eval_loss)));
      const args = JSON.parse(f['training_args.json'] as string);
      expect(args).toMatchObject({ output_dir: 'out', learning_rate: 5e-3, per_device_train_batch_size: 6, max_steps: 10, lr_scheduler_type: 'linear', eval_strategy: 'steps', eval_steps: 2, seed: 7, metric_for_best_model: 'eval_loss' });
      const names = [...readSafetensors(f[TRAINING_STATE_WEIGHTS] as Uint8Array).tensors.keys()];
      const n = s.peft.trainableVariables().length;
      expect(names.filter((k) => k.startsWith('trainable.'))).toHaveLength(n);
      expect(names.filter((k) => k.startsWith('exp_avg.'))).toHaveLength(n);
      expect(names.filter((k) => k.startsWith('exp_avg_sq.'))).toHaveLength(n);
    } finally {
      s.dispose();
    }
  });

  it('early stopping ends the run after `patience` evaluations without improvement', async () => {
    // Validation text the training text never shows: fitting the training set makes its loss climb.
    const validation = Array.from({ length: 6 }, (_, i) => ({ inputIds: Array.from({ length: 12 }, (_, j) => 900 - ((i * 5 + j * 17) % 300)) }));
    const s = await create(setup.model, {
      ...setup.init, data: { train: clmData(20), validation },
      args: { ...setup.init.args, learningRate: 5e-2, maxSteps: 30, warmupSteps: 0, scheduler: 'constant', evalSteps: 1, earlyStoppingPatience: 2 },
    });
    try {
      await run(s);
      expect(s.stoppedEarly).toBe(true);
      expect(s.completedSteps).toBeLessThan(30);
      const evals = s.logHistory.filter((r) => r.eval_loss !== undefined).map((r) => r.eval_loss!);
      const best = evals.indexOf(Math.min(...evals));
      expect(evals.length - 1 - best).toBe(2);
      expect(s.bestStep).toBe(best + 1);
    } finally {
      s.dispose();
    }
  });

  it('a checkpoint cut off mid-write, or from other settings, data or method, is refused with what differs', async () => {
    const s = await create(setup.model, setup.init);
    let f: CheckpointFiles;
    try {
      await run(s, 2);
      f = await s.checkpoint();
    } finally {
      s.dispose();
    }
    const baseline = tf.memory().numTensors;
    const truncated = { ...f, [TRAINING_STATE_WEIGHTS]: (f[TRAINING_STATE_WEIGHTS] as Uint8Array).subarray(0, 100) };
    const cut = await rejection(create(setup.model, { ...setup.init, resumeFrom: truncated }));
    expect(cut.code).toBe('BAD_CHECKPOINT');
    expect(cut.message).toMatch(/incomplete: training_state\.safetensors has 100 bytes but \d+ were written/);
    const { [TRAINER_STATE]: _, ...noState } = f;
    expect((await rejection(create(setup.model, { ...setup.init, resumeFrom: noState }))).message).toMatch(/has no trainer_state\.json/);
    const lr = await rejection(create(setup.model, { ...setup.init, args: { ...setup.init.args, learningRate: 1e-3 }, resumeFrom: f }));
    expect(lr.message).toMatch(/trained with learning_rate 0\.005 \(now 0\.001\)/);
    const data = await rejection(create(setup.model, { ...setup.init, data: { train: clmData(21) }, resumeFrom: f }));
    expect(data.message).toMatch(/training data differs/);
    const other = await rejection(create(setup.model, { ...setup.init, peft: loraConfig({ taskType: 'CAUSAL_LM', r: 2, targetModules: ['c_attn', 'c_fc'] }), resumeFrom: f }));
    expect(other.message).toMatch(/trainable tensors .* do not fit/);
    expect(tf.memory().numTensors).toBe(baseline);
  });
});
