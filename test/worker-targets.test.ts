/**
 * The Targets panel's numbers come from the worker's resolveTargets; over PEFT's own cases
 * (test/fixtures/target_modules.json) it must match the modules and the trainable line PEFT printed.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resolveArchitecture } from '../src/engine/models';
import type { TaskType } from '../src/engine/models/types';
import { resolveTargets } from '../src/worker/peft-settings';
import type { PeftSettings } from '../src/worker/protocol';

interface Case {
  id: string;
  model: string;
  lora_config: Record<string, unknown>;
  error: string | null;
  matched_modules: string[];
  trainable_params: number;
  all_params: number;
}

// The studio always sets a task; cases of a bare PeftModel (no task_type) are the engine's business.
const cases = (JSON.parse(readFileSync('test/fixtures/target_modules.json', 'utf8')) as { cases: Case[] }).cases.filter((c) => c.lora_config.task_type);

function settings(c: Record<string, unknown>): PeftSettings {
  return {
    peftType: 'LORA',
    r: (c.r as number) ?? 8,
    loraAlpha: (c.lora_alpha as number) ?? 8,
    loraDropout: (c.lora_dropout as number) ?? 0,
    bias: 'none',
    useRslora: false,
    initLoraWeights: true,
    targetModules: (c.target_modules as string | string[]) ?? [],
    excludeModules: (c.exclude_modules as string | string[] | null) ?? null,
    layersToTransform: (c.layers_to_transform as number[] | null) ?? null,
    layersPattern: (c.layers_pattern as string | null) ?? null,
  };
}

describe('worker resolveTargets over PEFT cases', () => {
  for (const c of cases) {
    it(c.id, () => {
      const config = JSON.parse(readFileSync(`test/fixtures/models/${c.model}/config.json`, 'utf8'));
      const task = c.lora_config.task_type as TaskType;
      const r = resolveArchitecture(config, task);
      const res = resolveTargets({ config, task, modules: r.spec.modules(r.config, r.task) }, settings(c.lora_config), c.model);
      if (c.error) {
        expect(res.error?.message).toBeTruthy();
        expect(res.matched).toEqual([]);
        return;
      }
      expect(res.error).toBeUndefined();
      expect(res.matched).toEqual(c.matched_modules);
      expect({ trainable: res.trainable, all: res.all }).toEqual({ trainable: c.trainable_params, all: c.all_params });
      expect(res.line).toMatch(/^trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: \d+\.\d{4}$/);
    });
  }
});
