/**
 * `train --save-steps / --save-total-limit / --resume-from / --load-best-model-at-end / --early-stopping-patience`:
 * Trainer-style checkpoint folders, an interrupted run continued to the same adapter and metrics.jsonl rows,
 * checkpoint writes that can't leave a half folder, and Ctrl-C writing a checkpoint to resume from.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listCheckpoints, readCheckpointDir, writeCheckpointDir } from '../src/cli/checkpoints';
import { main } from '../src/cli/main';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { readSafetensorsFile } from '../src/engine/io/node-files';
import { FIX, maxAbsDiff } from './helpers';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const GPT2 = join(FIX, 'models', 'gpt2-tiny');

let tmp: string;
let data: string;
beforeAll(async () => {
  await useNodeBackend('wasm');
  tmp = mkdtempSync(join(tmpdir(), 'peft-resume-'));
  data = join(tmp, 'clm.jsonl');
  writeFileSync(data, Array.from({ length: 16 }, (_, i) => JSON.stringify({ input_ids: [5, 6, 7, 8, 9, 10, 11, 12, 13].slice(i % 4) })).join('\n'));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Runs the CLI in-process; returns the exit code and what went to stderr. */
async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  const write = process.stderr.write.bind(process.stderr);
  let stderr = '';
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  try {
    return { code: await main(args), stderr };
  } finally {
    process.stderr.write = write;
  }
}

const base = (out: string, extra: string[] = []) => [
  'train', '--model', GPT2, '--data', data, '--task', 'causal_lm', '--method', 'lora', '--target-modules', 'c_attn,c_fc', '--lora-dropout', '0.1',
  '--r', '4', '--steps', '12', '--lr', '1e-2', '--batch-size', '4', '--validation-split', '0.25', '--eval-steps', '4', '--seed', '3', '--out', out, ...extra,
];
const rows = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
/** metrics.jsonl rows without their timing. */
const untimed = (path: string) => rows(path).map(({ tokens_per_sec: _, ...r }) => r);
const weights = (dir: string) => readSafetensorsFile(join(dir, 'adapter_model.safetensors')).tensors;

describe('train checkpoints', () => {
  it('--save-steps writes checkpoint-<step>/ folders; --resume-from continues to the same adapter and metrics.jsonl', async () => {
    const a = join(tmp, 'a');
    const r = await cli(base(a, ['--save-steps', '4']));
    expect(r.code, r.stderr).toBe(0);
    expect(listCheckpoints(a).map((c) => c.step)).toEqual([4, 8, 12]);
    expect(readdirSync(join(a, 'checkpoint-4')).sort()).toEqual([
      'adapter_config.json', 'adapter_model.safetensors', 'trainer_state.json', 'training_args.json', 'training_state.safetensors',
    ]);
    const st = JSON.parse(readFileSync(join(a, 'checkpoint-8', 'trainer_state.json'), 'utf8'));
    expect(st.global_step).toBe(8);
    expect(st.log_history.filter((e: { loss?: number }) => e.loss !== undefined)).toHaveLength(8);
    expect(st.log_history.filter((e: { eval_loss?: number }) => e.eval_loss !== undefined).map((e: { step: number }) => e.step)).toEqual([4, 8]);

    const b = join(tmp, 'b');
    const r2 = await cli(base(b, ['--save-steps', '4', '--resume-from', join(a, 'checkpoint-4')]));
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toContain('resuming from');
    expect(r2.stderr).toContain('at step 4/12');
    expect(untimed(join(b, 'metrics.jsonl'))).toEqual(untimed(join(a, 'metrics.jsonl')));
    const wa = weights(a);
    const wb = weights(b);
    expect([...wb.keys()].sort()).toEqual([...wa.keys()].sort());
    for (const [k, t] of wa) expect(maxAbsDiff(wb.get(k)!.data, t.data), k).toBeLessThanOrEqual(1e-6);
    // The resumed run's checkpoints come after the one it started from.
    expect(listCheckpoints(b).map((c) => c.step)).toEqual([8, 12]);
  });

  it('--save-total-limit keeps the newest checkpoints and never deletes the best; --load-best-model-at-end ends on the best', async () => {
    const out = join(tmp, 'best');
    // A high learning rate on held-out text the training never shows: the eval loss is best early, then worse.
    const valid = join(tmp, 'valid.jsonl');
    writeFileSync(valid, Array.from({ length: 4 }, (_, i) => JSON.stringify({ input_ids: [900 - i, 800, 700 + i, 600, 500] })).join('\n'));
    const args = base(out, ['--save-total-limit', '1', '--load-best-model-at-end', '--eval-steps', '2']).filter((x) => x !== '--validation-split' && x !== '0.25');
    args.splice(args.indexOf('--lr') + 1, 1, '5e-2');
    const r = await cli([...args, '--validation', valid, '--scheduler', 'constant']);
    expect(r.code, r.stderr).toBe(0);
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(run.best_step).toBeGreaterThan(0);
    const evals = rows(join(out, 'metrics.jsonl')).filter((x) => 'eval_loss' in x);
    const best = evals.reduce((m, e) => (e.eval_loss < m.eval_loss ? e : m));
    expect(run.best_step).toBe(best.step);
    expect(run.adapter_from).toBe(`checkpoint-${best.step}`);
    const kept = listCheckpoints(out).map((c) => c.step);
    // Limit 1 with a best that is not the latest keeps both (Trainer's rule), so the run can still resume.
    expect(kept).toEqual(best.step === 12 ? [12] : [best.step, 12]);
    expect(readFileSync(join(out, 'adapter_model.safetensors'))).toEqual(readFileSync(join(out, `checkpoint-${best.step}`, 'adapter_model.safetensors')));
  });

  it('--early-stopping-patience stops when the eval metric stops improving', async () => {
    const out = join(tmp, 'early');
    const valid = join(tmp, 'valid2.jsonl');
    writeFileSync(valid, Array.from({ length: 4 }, (_, i) => JSON.stringify({ input_ids: [900 - i, 800, 700 + i, 600, 500] })).join('\n'));
    const args = base(out, ['--eval-steps', '1', '--early-stopping-patience', '2', '--scheduler', 'constant', '--validation', valid]).filter((x) => x !== '--validation-split' && x !== '0.25');
    args.splice(args.indexOf('--lr') + 1, 1, '5e-2');
    args.splice(args.indexOf('--steps') + 1, 1, '40');
    const r = await cli(args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/early stopping: eval_loss did not improve for 2 evaluations/);
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(run.stopped_early).toBe(true);
    expect(run.completed_steps).toBe(run.best_step + 2);
  });

  it('a checkpoint write that fails half way leaves the previous checkpoint whole and no half folder', async () => {
    const out = join(tmp, 'atomic');
    const r = await cli(base(out, ['--save-steps', '4', '--steps', '4']));
    expect(r.code, r.stderr).toBe(0);
    const good = readCheckpointDir(join(out, 'checkpoint-4'));
    let n = 0;
    const failing = (path: string, d: Uint8Array | string) => {
      if (++n === 3) throw new Error('ENOSPC: no space left on device');
      writeFileSync(path, d);
    };
    expect(() => writeCheckpointDir(out, 8, good, failing)).toThrow(/ENOSPC/);
    expect(readdirSync(out).filter((f) => f.includes('checkpoint'))).toEqual(['checkpoint-4']);
    expect(() => readCheckpointDir(join(out, 'checkpoint-4'))).not.toThrow();
    // Resuming from the surviving checkpoint works.
    const r2 = await cli(base(join(tmp, 'atomic-2'), ['--steps', '4', '--resume-from', join(out, 'checkpoint-4')]));
    expect(r2.code, r2.stderr).toBe(0);
    // A folder cut short (no trainer_state.json, or a shorter file than recorded) is refused, not half-loaded.
    const cut = join(tmp, 'cut');
    cpSync(join(out, 'checkpoint-4'), cut, { recursive: true });
    writeFileSync(join(cut, 'training_state.safetensors'), readFileSync(join(cut, 'training_state.safetensors')).subarray(0, 64));
    const r3 = await cli(base(join(tmp, 'cut-out'), ['--steps', '4', '--resume-from', cut]));
    expect(r3.code).toBe(1);
    expect(r3.stderr).toMatch(/incomplete: training_state\.safetensors has 64 bytes but \d+ were written/);
    rmSync(join(cut, 'trainer_state.json'));
    expect((await cli(base(join(tmp, 'cut-out'), ['--resume-from', cut]))).stderr).toMatch(/has no trainer_state\.json/);
    expect((await cli(base(join(tmp, 'cut-out'), ['--resume-from', join(tmp, 'nope')]))).stderr).toMatch(/is not a folder/);
    const lr = await cli(base(join(tmp, 'cut-out'), ['--steps', '4', '--resume-from', join(out, 'checkpoint-4'), '--seed', '4']));
    expect(lr.code).toBe(1);
    expect(lr.stderr).toMatch(/trained with seed 3 \(now 4\)/);
  });

  it('flags that need evaluation say so (usage, exit 2)', async () => {
    // By default a tenth of --data is held out and evaluated every 10 steps; without validation data or with
    // evaluation off, these flags have nothing to go by.
    const r = await cli(['train', '--model', GPT2, '--data', data, '--method', 'lora', '--load-best-model-at-end', '--validation-split', '0', '--out', join(tmp, 'x')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--load-best-model-at-end needs --eval-steps > 0 and validation data/);
    const p = await cli(['train', '--model', GPT2, '--data', data, '--method', 'lora', '--early-stopping-patience', '2', '--eval-steps', '0', '--out', join(tmp, 'x')]);
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/--early-stopping-patience needs --eval-steps > 0/);
  });

  it('Ctrl-C finishes the step, writes a checkpoint and says how to resume (subprocess)', async () => {
    const out = join(tmp, 'sigint');
    const args = base(out).map((x) => (x === '12' ? '100000' : x));
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, env: { ...process.env, PEFT_STUDIO_DEBUG: '' } });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += String(d)));
    const code = await new Promise<number | null>((resolve) => {
      child.stdout.on('data', (d) => {
        stdout += String(d);
        if (/^eval @/m.test(stdout) && !child.killed) child.kill('SIGINT');
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(code, stderr).toBe(1);
    const m = /Stopped at step (\d+)\/100000; continue with --resume-from (\S+) and the same flags/.exec(stderr);
    expect(m, stderr).not.toBeNull();
    expect(existsSync(join(m![2], 'trainer_state.json'))).toBe(true);
    expect(JSON.parse(readFileSync(join(m![2], 'trainer_state.json'), 'utf8')).global_step).toBe(Number(m![1]));
  }, 60_000);
});
