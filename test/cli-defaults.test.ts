/**
 * One set of run defaults (src/engine/train/defaults.ts): the studio's initial settings and the CLI's flags
 * left out read the same values, `train --help` shows them, and an adapter trained with the flags left out
 * holds what PEFT writes for those values (lora_alpha 16, lora_dropout 0.05).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseArgv, helpText } from '../src/cli/common';
import { peftConfigFromFlags } from '../src/cli/peft-options';
import { TRAIN, trainCommand, trainingArgs, validationFraction } from '../src/cli/train';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { methodInfo } from '../src/engine/peft/method';
import { METHODS } from '../src/engine/peft/registry';
import { METHOD_DEFAULTS, RUN_DEFAULTS } from '../src/engine/train/defaults';
import { DEFAULT_ARGS, formDefaults, PROJECT_DEFAULTS } from '../src/state/project';
import { FIX } from './helpers';

const GPT2 = join(FIX, 'models', 'gpt2-tiny');
let tmp: string;

beforeAll(async () => {
  await useNodeBackend('cpu');
  tmp = mkdtempSync(join(tmpdir(), 'cli-defaults-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('shared run defaults', () => {
  it('the studio starts from them', () => {
    const { learningRate, maxSteps, epochs, batchSize, maxLength, warmupSteps, scheduler, evalSteps, seed, saveTotalLimit } = DEFAULT_ARGS;
    expect({ learningRate, maxSteps, epochs, batchSize, maxLength, warmupSteps, scheduler, evalSteps, seed, saveTotalLimit }).toEqual({
      learningRate: RUN_DEFAULTS.learningRate, maxSteps: RUN_DEFAULTS.maxSteps, epochs: RUN_DEFAULTS.epochs, batchSize: RUN_DEFAULTS.batchSize,
      maxLength: RUN_DEFAULTS.maxLength, warmupSteps: RUN_DEFAULTS.warmupSteps, scheduler: RUN_DEFAULTS.scheduler, evalSteps: RUN_DEFAULTS.evalSteps,
      seed: RUN_DEFAULTS.seed, saveTotalLimit: RUN_DEFAULTS.saveTotalLimit,
    });
    expect(PROJECT_DEFAULTS.validationSplit).toBe(RUN_DEFAULTS.validationSplit);
    expect(PROJECT_DEFAULTS.limitBy).toBe('maxSteps');
    const lora = formDefaults(methodInfo(METHODS.find((m) => m.peftType === 'LORA')!));
    expect(lora).toMatchObject({ ...METHOD_DEFAULTS.LORA, r: 8 });
    expect(METHOD_DEFAULTS.LORA).toEqual({ loraAlpha: 16, loraDropout: 0.05 });
  });

  it('the CLI\'s flags left out take them; flags given win; --validation-split 0 and --eval-steps 0 turn them off', () => {
    const none = parseArgv(TRAIN, []);
    expect(trainingArgs(none)).toMatchObject({
      learningRate: RUN_DEFAULTS.learningRate, maxSteps: RUN_DEFAULTS.maxSteps, batchSize: RUN_DEFAULTS.batchSize, maxLength: RUN_DEFAULTS.maxLength,
      warmupSteps: RUN_DEFAULTS.warmupSteps, scheduler: RUN_DEFAULTS.scheduler, evalSteps: RUN_DEFAULTS.evalSteps, seed: RUN_DEFAULTS.seed,
      saveTotalLimit: RUN_DEFAULTS.saveTotalLimit, gradientAccumulationSteps: RUN_DEFAULTS.gradientAccumulationSteps,
    });
    expect(trainingArgs(none).epochs).toBeUndefined();
    expect(validationFraction(none)).toBe(RUN_DEFAULTS.validationSplit);
    // --epochs replaces the step default rather than fighting it.
    const ep = trainingArgs(parseArgv(TRAIN, ['--epochs', '2']));
    expect(ep.epochs).toBe(2);
    expect(ep.maxSteps).toBeUndefined();
    expect(trainingArgs(parseArgv(TRAIN, ['--warmup-steps', '0', '--eval-steps', '0']))).toMatchObject({ warmupSteps: 0, evalSteps: 0 });
    expect(validationFraction(parseArgv(TRAIN, ['--validation-split', '0']))).toBe(0);
    expect(validationFraction(parseArgv(TRAIN, ['--validation', 'v.jsonl']))).toBe(0);
    expect(() => validationFraction(parseArgv(TRAIN, ['--validation-split', '1']))).toThrow(/at least 0 .* below 1/);
    expect(() => validationFraction(parseArgv(TRAIN, ['--validation', 'v.jsonl', '--validation-split', '0.2']))).toThrow(/not both/);

    const cfg = peftConfigFromFlags(parseArgv(TRAIN, []), 'CAUSAL_LM', 'm') as unknown as Record<string, unknown>;
    expect(cfg).toMatchObject({ peftType: 'LORA', r: 8, loraAlpha: 16, loraDropout: 0.05 });
    const given = peftConfigFromFlags(parseArgv(TRAIN, ['--lora-alpha', '8', '--lora-dropout', '0']), 'CAUSAL_LM', 'm') as unknown as Record<string, unknown>;
    expect(given).toMatchObject({ loraAlpha: 8, loraDropout: 0 });
    // AdaLoRA has no shared start values: PEFT's own.
    const ada = peftConfigFromFlags(parseArgv(TRAIN, ['--method', 'adalora', '--total-step', '10']), 'CAUSAL_LM', 'm') as unknown as Record<string, unknown>;
    expect(ada).toMatchObject({ loraAlpha: 8, loraDropout: 0 });
  });

  it('train --help shows them', () => {
    const lines = helpText(TRAIN).split('\n');
    /** A flag's help: its line and the continuation lines under it. */
    const helpOf = (flag: string) => {
      const i = lines.findIndex((l) => l.trim().startsWith(`${flag} `) || l.trim() === flag);
      expect(i, flag).toBeGreaterThanOrEqual(0);
      let j = i + 1;
      while (j < lines.length && lines[j].trim() && !lines[j].trim().startsWith('--')) j++;
      return lines.slice(i, j).join(' ').replace(/\s+/g, ' ');
    };
    for (const [flag, value] of [
      ['--steps N', RUN_DEFAULTS.maxSteps], ['--lr X', RUN_DEFAULTS.learningRate], ['--batch-size N', RUN_DEFAULTS.batchSize],
      ['--warmup-steps N', RUN_DEFAULTS.warmupSteps], ['--eval-steps N', RUN_DEFAULTS.evalSteps], ['--max-length N', RUN_DEFAULTS.maxLength],
      ['--validation-split F|NAME', RUN_DEFAULTS.validationSplit], ['--save-total-limit K', RUN_DEFAULTS.saveTotalLimit],
    ] as const) {
      expect(helpOf(flag)).toContain(`default ${value}`);
    }
    const help = lines.join(' ').replace(/\s+/g, ' ');
    expect(help).toMatch(/--lora-alpha X .*\(LoRA default 16, AdaLoRA default 8\)/);
    expect(help).toMatch(/--lora-dropout X .*\(LoRA default 0\.05, AdaLoRA default 0\)/);
  });

  it('a run with the flags left out: adapter_config.json has lora_alpha 16 and lora_dropout 0.05, a held-out tenth is evaluated every 10 steps', async () => {
    const data = join(tmp, 'lm.jsonl');
    writeFileSync(data, Array.from({ length: 20 }, (_, i) => JSON.stringify({ input_ids: Array.from({ length: 8 }, (_, j) => 3 + ((i * 11 + j * 5) % 500)) })).join('\n') + '\n');
    const out = join(tmp, 'run');
    await trainCommand(['--model', GPT2, '--data', data, '--target-modules', 'c_attn', '--steps', '20', '--batch-size', '6', '--out', out]);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 8, lora_alpha: 16, lora_dropout: 0.05, target_modules: ['c_attn'] });
    const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.filter((r) => 'eval_loss' in r).map((r) => r.step)).toEqual([10, 20]);
    const lrs = rows.filter((r) => 'loss' in r).map((r) => r.lr as number);
    // Warm-up to the default peak, then decay.
    expect(Math.max(...lrs)).toBeCloseTo(RUN_DEFAULTS.learningRate, 10);
    expect(lrs[0]).toBeLessThan(RUN_DEFAULTS.learningRate / 2);
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(run).toMatchObject({ train_examples: 18, validation_examples: 2, args: { warmupSteps: RUN_DEFAULTS.warmupSteps, evalSteps: RUN_DEFAULTS.evalSteps } });
  }, 60_000);
});
