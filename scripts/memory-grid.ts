/**
 * Writes docs/bench/memory-grid.json, the measured peak memory that test/memory-estimate.test.ts holds the
 * studio's estimate to: `npm run bench -- --memory-grid` (batch 1/4/8/16 x seq 128/256, each point in a fresh
 * process) for every preset, with gradient checkpointing on and off.
 *
 *   npx tsx scripts/memory-grid.ts [--presets tiny,gpt2-124m] [--modes on,off] [--from DIR]
 *
 * --from DIR merges grid outputs already saved as DIR/<preset>-<on|off>.json instead of measuring again.
 * Takes about an hour and a half on 2 cores (Qwen2.5-0.5B's points are most of it).
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const presets = (arg('presets') ?? 'tiny,gpt2-124m,smollm2-135m,qwen2.5-0.5b').split(',');
const modes = (arg('modes') ?? 'on,off').split(',');
const from = arg('from');

interface GridOutput {
  memory: Record<string, unknown>[];
}

const points: Record<string, unknown>[] = [];
for (const preset of presets) {
  for (const mode of modes) {
    let out: GridOutput;
    const saved = from && join(from, `${preset}-${mode}.json`);
    if (saved && existsSync(saved)) out = JSON.parse(readFileSync(saved, 'utf8'));
    else if (from) continue;
    else {
      process.stderr.write(`memory grid: ${preset}, checkpointing ${mode}\n`);
      const stdout = execFileSync('npx', ['tsx', 'src/cli/bench.ts', '--preset', preset, '--checkpointing', mode, '--memory-grid'], {
        cwd: root, encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'],
      });
      out = JSON.parse(stdout.trim().split('\n').pop()!);
    }
    for (const p of out.memory) points.push({ preset, checkpointing: mode === 'on', ...p });
  }
}
mkdirSync(join(root, 'docs', 'bench'), { recursive: true });
const file = join(root, 'docs', 'bench', 'memory-grid.json');
const doc = {
  about: 'Peak memory of one LoRA training step (npm run bench -- --memory-grid), wasm backend in Node, dropout off, r=8 on the presets\' default targets.',
  command: `npx tsx scripts/memory-grid.ts${from ? ' (merged from saved grid outputs)' : ''}`,
  node: process.version,
  cpu: `${cpus()[0]?.model ?? 'unknown'} x${cpus().length}`,
  points,
};
writeFileSync(file, `${JSON.stringify(doc, null, 1)}\n`);
process.stderr.write(`wrote ${file} (${points.length} points)\n`);
