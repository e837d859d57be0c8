/**
 * `<out>/checkpoint-<step>/` folders as transformers' Trainer keeps them: written atomically (into a hidden
 * temporary folder, then renamed), rotated to --save-total-limit without ever deleting the best one.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { EngineError } from '../engine/errors';
import { readTrainerState, type CheckpointFiles } from '../engine/train/checkpoint';

export const checkpointName = (step: number) => `checkpoint-${step}`;
const STEP = /^checkpoint-(\d+)$/;

/** Files written by a checkpoint are text when they are JSON. */
const isText = (name: string) => name.endsWith('.json');

/**
 * Writes `files` as <out>/checkpoint-<step>/: everything goes into <out>/.checkpoint-<step>.partial first and
 * the folder is renamed into place once complete, so an interrupted write leaves the previous checkpoints as
 * they were (and no half folder under a checkpoint's name). `write` is the file writer (replaceable in tests).
 */
export function writeCheckpointDir(
  out: string, step: number, files: CheckpointFiles, write: (path: string, data: Uint8Array | string) => void = writeFileSync,
): string {
  const final = join(out, checkpointName(step));
  const tmp = join(out, `.${checkpointName(step)}.partial`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    // trainer_state.json last: it lists the other files' sizes.
    const names = Object.keys(files).sort((a, b) => Number(a === 'trainer_state.json') - Number(b === 'trainer_state.json'));
    for (const name of names) write(join(tmp, name), files[name]);
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return final;
}

/** Reads a checkpoint folder and checks it is complete (trainer_state.json's file sizes). */
export function readCheckpointDir(dir: string): CheckpointFiles {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new EngineError('BAD_CHECKPOINT', `${dir} is not a folder; --resume-from takes a checkpoint folder such as out/checkpoint-100.`);
  }
  const files: CheckpointFiles = {};
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (!statSync(p).isFile()) continue;
    files[name] = isText(name) ? readFileSync(p, 'utf8') : new Uint8Array(readFileSync(p));
  }
  readTrainerState(files, dir);
  return files;
}

/** The complete checkpoint folders under `out`, oldest step first. */
export function listCheckpoints(out: string): { step: number; dir: string }[] {
  if (!existsSync(out)) return [];
  return readdirSync(out)
    .map((n) => ({ n, m: STEP.exec(n) }))
    .filter((x) => x.m && statSync(join(out, x.n)).isDirectory())
    .map((x) => ({ step: Number(x.m![1]), dir: join(out, x.n) }))
    .sort((a, b) => a.step - b.step);
}

/**
 * Deletes the oldest checkpoints beyond `limit` (Trainer's _rotate_checkpoints): the best one is never deleted,
 * and with a limit of 1 both the best and the latest are kept, so a run can still resume.
 */
export function rotateCheckpoints(out: string, limit: number | null, bestDir: string | null): string[] {
  if (limit == null) return [];
  const all = listCheckpoints(out);
  const latest = all[all.length - 1]?.dir;
  const keep = new Set<string>();
  if (bestDir) keep.add(basename(bestDir));
  const effective = limit === 1 && bestDir && latest && basename(bestDir) !== basename(latest) ? 2 : limit;
  // Newest first, the best counted among the kept ones.
  for (const c of [...all].reverse()) {
    if (keep.size >= effective) break;
    keep.add(basename(c.dir));
  }
  const removed: string[] = [];
  for (const c of all) {
    if (keep.has(basename(c.dir))) continue;
    rmSync(c.dir, { recursive: true, force: true });
    removed.push(c.dir);
  }
  return removed;
}
