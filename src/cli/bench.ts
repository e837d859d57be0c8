/**
 * `npm run bench -- [--preset tiny|gpt2-124m|smollm2-135m|qwen2.5-0.5b] [shape flags] [--backends cpu,wasm]
 * [--checkpointing on|off] [--memory-grid] [--out file.json]`: per tfjs backend available in Node, LoRA training
 * steps on a randomly initialised model of that shape (src/engine/bench.ts), the backend's 1024^3 matmul rate
 * and the step's efficiency against it. Prints one JSON object on stdout.
 *
 * --memory-grid measures peak memory (one step each) for batch 1/4/8/16 x seq 128/256, each in a fresh child
 * process: the wasm heap never shrinks, so a process measures one configuration.
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { benchDecoding, benchMatmul, benchTraining, PRESETS, type BenchShape } from '../engine/bench';
import { describeError } from '../engine/errors';
import { useNodeBackend } from '../engine/io/node-backend';
import { wasmHeapBytes } from '../engine/wasm-heap';
import { helpText, int, list, note, parseArgv, runCli, str, usage, writeJson, type CommandSpec, type Parsed } from './common';

export const BENCH: CommandSpec = {
  name: 'bench',
  summary: 'Measures LoRA training steps (time, tokens/s, FLOP/s, memory) and 1024^3 matmul GFLOP/s per tfjs backend; prints one JSON object.',
  usage: 'npm run bench -- [--preset gpt2-124m] [--batch 8 --seq 128 --r 8 --steps 3] [--backends cpu,wasm] [--checkpointing on|off] [--memory-grid] [--out file.json]',
  options: {
    preset: { kind: 'value', arg: 'NAME', help: `Model shape: ${Object.keys(PRESETS).join(', ')} (default tiny: GPT-2, 4 layers, d=256, vocab 8192).` },
    arch: { kind: 'value', arg: 'gpt2|llama', help: 'Architecture when giving the shape by hand.' },
    layers: { kind: 'value', arg: 'N', help: 'Transformer blocks.' },
    d: { kind: 'value', arg: 'N', help: 'Hidden size.' },
    heads: { kind: 'value', arg: 'N', help: 'Attention heads.' },
    'kv-heads': { kind: 'value', arg: 'N', help: 'Key/value heads (llama).' },
    ffn: { kind: 'value', arg: 'N', help: 'MLP size.' },
    vocab: { kind: 'value', arg: 'N', help: 'Vocabulary size.' },
    targets: { kind: 'value', arg: 'a,b', help: 'LoRA target_modules (default c_attn for gpt2, q_proj,v_proj for llama).' },
    batch: { kind: 'value', arg: 'N', help: 'Batch size (default 8).' },
    seq: { kind: 'value', arg: 'N', help: 'Sequence length (default 64).' },
    r: { kind: 'value', arg: 'N', help: 'LoRA rank (default 8).' },
    steps: { kind: 'value', arg: 'N', help: 'Timed training steps after one warm-up step (default 3).' },
    checkpointing: { kind: 'value', arg: 'on|off', help: 'Gradient checkpointing (default off).' },
    'matmul-runs': { kind: 'value', arg: 'N', help: 'Timed 1024^3 matmuls after a warm-up (default 5).' },
    backends: { kind: 'value', arg: 'cpu,wasm', help: 'Backends to measure (default wasm).' },
    'memory-grid': { kind: 'flag', help: 'Peak memory for batch 1/4/8/16 x seq 128/256 (one step each, a fresh process each).' },
    generate: { kind: 'value', arg: 'N', help: 'Also time KV-cached generation: a 32-token prompt, then N new tokens (ms per token).' },
    pytorch: { kind: 'value', arg: 'PYTHON', help: 'Also time PyTorch + PEFT on the same shape (scripts/bench-pytorch.py run by this Python, 2 threads).' },
    out: { kind: 'value', arg: 'FILE', help: 'Also write the JSON here.' },
  },
  notes: 'Examples:\n  npm run bench -- --preset gpt2-124m --batch 8 --seq 128 --checkpointing on\n  npm run bench -- --preset qwen2.5-0.5b --batch 4 --seq 128 --checkpointing on --steps 1',
};

export function shapeOf(p: Parsed): BenchShape {
  const name = str(p, 'preset') ?? 'tiny';
  const preset = PRESETS[name];
  if (!preset) throw usage(`--preset: "${name}" is not one of ${Object.keys(PRESETS).join(', ')}`);
  const pos = (flag: string, d: number | undefined) => {
    const v = int(p, flag) ?? d;
    if (v !== undefined && v < 1) throw usage(`--${flag} must be a positive integer`);
    return v;
  };
  const arch = (str(p, 'arch') ?? preset.arch) as BenchShape['arch'];
  if (arch !== 'gpt2' && arch !== 'llama') throw usage(`--arch must be gpt2 or llama, got "${arch}"`);
  const s: BenchShape = {
    ...preset,
    arch,
    layers: pos('layers', preset.layers)!,
    d: pos('d', preset.d)!,
    heads: pos('heads', preset.heads)!,
    kvHeads: pos('kv-heads', preset.kvHeads),
    ffn: pos('ffn', preset.ffn),
    vocab: pos('vocab', preset.vocab)!,
    batch: pos('batch', 8)!,
    seq: pos('seq', 64)!,
    r: pos('r', 8)!,
    targets: list(p, 'targets') ?? (arch === preset.arch ? preset.targets : arch === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj']),
  };
  if (s.d % s.heads) throw usage(`--d ${s.d} is not divisible by --heads ${s.heads}`);
  if (s.heads % (s.kvHeads ?? s.heads)) throw usage(`--heads ${s.heads} is not a multiple of --kv-heads ${s.kvHeads}`);
  return s;
}

export function onOff(p: Parsed, flag: string): boolean {
  const v = str(p, flag) ?? 'off';
  if (v !== 'on' && v !== 'off') throw usage(`--${flag} must be on or off, got "${v}"`);
  return v === 'on';
}

export async function runBench(s: BenchShape, backends: ('cpu' | 'wasm')[], o: { steps: number; checkpointing: boolean; matmulRuns: number; generate?: number }) {
  const results: Record<string, unknown> = {};
  for (const b of backends) {
    try {
      await useNodeBackend(b);
    } catch (e) {
      results[b] = { available: false, error: describeError(e) };
      continue;
    }
    note(`bench: ${b} ...`);
    const flags = b === 'wasm' ? { simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'), threads: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') } : {};
    let train: Awaited<ReturnType<typeof benchTraining>>;
    try {
      train = await benchTraining(s, { steps: o.steps, checkpointing: o.checkpointing, profileMemory: true });
    } catch (e) {
      // The shape does not train here (out of memory, typically): say so in the JSON, as a result.
      results[b] = { available: true, ...flags, error: describeError(e), error_code: (e as { code?: string }).code ?? null, peak_heap_bytes: b === 'wasm' ? wasmHeapBytes() : null };
      continue;
    }
    const mm = await benchMatmul(o.matmulRuns);
    const gen = o.generate ? { generation: await benchDecoding(s, 32, o.generate) } : {};
    results[b] = { available: true, ...flags, ...train, ...mm, efficiency: train.step_gflops === null ? null : r3(train.step_gflops / mm.matmul_gflops), ...gen };
  }
  return {
    model: { ...s, lora: { r: s.r, target_modules: s.targets } },
    batch: s.batch,
    seq: s.seq,
    timed_steps: o.steps,
    node: process.version,
    cpu: `${cpus()[0]?.model ?? 'unknown'} x${cpus().length}`,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    backends: results,
  };
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** Each grid point in its own process (same flags, one step, memory only). */
function memoryGrid(argv: string[]) {
  const keep = argv.filter((a, i) => a !== '--memory-grid' && !/^--(batch|seq|steps|out)$/.test(a) && !/^--(batch|seq|steps|out)$/.test(argv[i - 1] ?? ''));
  const points: Record<string, unknown>[] = [];
  for (const seq of [128, 256]) {
    for (const batch of [1, 4, 8, 16]) {
      note(`bench: memory at batch ${batch} x seq ${seq} ...`);
      const child = spawnSync(process.execPath, [...process.execArgv, process.argv[1], ...keep, '--batch', String(batch), '--seq', String(seq), '--steps', '0', '--matmul-runs', '1'], {
        encoding: 'utf8', maxBuffer: 1 << 24,
      });
      const line = child.stdout.trim().split('\n').pop() ?? '';
      let res: Record<string, unknown> | null = null;
      try {
        res = JSON.parse(line);
      } catch {
        points.push({ batch, seq, error: (child.stderr || 'no output').trim().split('\n').slice(-3).join(' ') });
        continue;
      }
      for (const [backend, r] of Object.entries((res!.backends ?? {}) as Record<string, Record<string, unknown>>)) {
        points.push({
          backend, batch, seq, peak_heap_bytes: r.peak_heap_bytes, tf_peak_bytes: r.tf_peak_bytes, peak_rss_bytes: res!.peak_rss_bytes,
          weights_bytes: r.weights_bytes, adapter_optimizer_bytes: r.adapter_optimizer_bytes, activations_bytes: r.activations_bytes,
          lm_head_bytes: r.lm_head_bytes, error: r.error, error_code: r.error_code,
        });
      }
    }
  }
  return points;
}

/** PyTorch + PEFT on the same shape, in the same run (scripts/bench-pytorch.py prints one JSON object). */
function pytorchBench(python: string, s: BenchShape, steps: number, checkpointing: boolean): Record<string, unknown> {
  note('bench: pytorch ...');
  const script = fileURLToPath(new URL('../../scripts/bench-pytorch.py', import.meta.url));
  const args = [script, '--shape', JSON.stringify(s), '--steps', String(Math.max(1, steps)), ...(checkpointing ? ['--checkpointing'] : [])];
  const child = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = (child.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    return { available: false, error: ((child.stderr || child.error?.message) ?? 'no output').trim().split('\n').slice(-2).join(' ') };
  }
}

export async function benchCommand(argv: string[]): Promise<void> {
  const p = parseArgv(BENCH, argv);
  if (p.help) return void console.log(helpText(BENCH));
  const s = shapeOf(p);
  const checkpointing = onOff(p, 'checkpointing');
  const backends = (list(p, 'backends') ?? ['wasm']).map((b) => {
    if (b !== 'cpu' && b !== 'wasm') throw usage(`--backends: "${b}" is not a Node backend (cpu, wasm)`);
    return b;
  });
  const steps = int(p, 'steps') ?? 3;
  if (steps < 0) throw usage('--steps must be >= 0');
  const res: Record<string, unknown> = p.opts.has('memory-grid')
    ? { model: { ...s, lora: { r: s.r, target_modules: s.targets } }, gradient_checkpointing: checkpointing, memory: memoryGrid(argv) }
    : await runBench(s, backends, { steps, checkpointing, matmulRuns: int(p, 'matmul-runs') ?? 5, generate: int(p, 'generate') ?? undefined });
  const python = str(p, 'pytorch');
  if (python && !p.opts.has('memory-grid')) {
    const torch = pytorchBench(python, s, steps, checkpointing);
    res.pytorch = torch;
    for (const r of Object.values(res.backends as Record<string, { tokens_per_sec?: number | null }>)) {
      if (r.tokens_per_sec && typeof torch.tokens_per_sec === 'number') Object.assign(r, { vs_pytorch: r3(r.tokens_per_sec / torch.tokens_per_sec) });
    }
  }
  const out = str(p, 'out');
  if (out) writeJson(out, res);
  process.stdout.write(`${JSON.stringify(res)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runCli(() => benchCommand(process.argv.slice(2))).then((code) => {
    process.exitCode = code;
  });
}
