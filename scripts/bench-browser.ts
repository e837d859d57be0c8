/**
 * `npm run bench:browser -- [--preset tiny|gpt2-124m|...] [shape flags as npm run bench] [--backends wasm,webgpu]
 * [--webgpu-adapter llvmpipe|swiftshader] [--checkpointing on|off] [--no-build] [--out file.json]`
 *
 * The measurements of `npm run bench` (src/engine/bench.ts), in Debian's Chromium through the studio's real
 * worker: builds the app (unless --no-build), serves it with `vite preview` (COOP/COEP: cross-origin isolated,
 * so tfjs-backend-wasm runs its threaded build), opens bench.html in a fresh browser per backend (the wasm
 * heap only grows, so each backend is measured alone) and calls window.peftBench (src/bench/page.ts).
 * Prints one JSON object on stdout, logs on stderr; preview and browser are shut down on every exit path.
 *
 * WebGPU without a GPU: `llvmpipe` (default) is Chromium's ANGLE / OpenGL ES adapter on Mesa's llvmpipe, a
 * compatibility-level adapter (the worker is told to ask for one); `swiftshader` is Chromium's software Vulkan
 * adapter, slower. When llvmpipe does not start, the run falls back to SwiftShader and says so in `notes`.
 * `cross_check` compares the first-step loss of both backends (same seed and shape; must agree to 1e-3).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from '@playwright/test';
import { BENCH, onOff, shapeOf } from '../src/cli/bench';
import { helpText, int, list, note, parseArgv, runCli, str, usage, writeJson, type CommandSpec } from '../src/cli/common';
import type { BenchShape } from '../src/engine/bench';
import type { PeftBenchOptions, PeftBenchReply } from '../src/bench/page';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ADAPTERS = ['llvmpipe', 'swiftshader'] as const;
type Adapter = (typeof ADAPTERS)[number];
type Backend = 'wasm' | 'webgpu';

const SHAPE_OPTIONS = Object.fromEntries(Object.entries(BENCH.options).filter(([k]) => !['backends', 'memory-grid', 'pytorch', 'out'].includes(k)));

const SPEC: CommandSpec = {
  name: 'bench:browser',
  summary: 'npm run bench in Chromium through the studio worker (wasm multi-threaded, WebGPU); prints one JSON object.',
  usage: 'npm run bench:browser -- [--preset tiny] [--batch 8 --seq 64 --steps 3] [--backends wasm,webgpu] [--webgpu-adapter llvmpipe|swiftshader] [--checkpointing on|off] [--no-build] [--out file.json]',
  options: {
    ...SHAPE_OPTIONS,
    backends: { kind: 'value', arg: 'wasm,webgpu', help: 'Backends to measure, each in a fresh browser (default wasm,webgpu).' },
    'webgpu-adapter': { kind: 'value', arg: 'llvmpipe|swiftshader', help: 'WebGPU without a GPU: ANGLE/OpenGL ES on llvmpipe (default, compatibility adapter) or SwiftShader.' },
    'wasm-threads': { kind: 'value', arg: 'N', help: "XNNPACK threads on wasm (default the studio's: every core up to 4, half of them beyond, at most 8)." },
    'no-build': { kind: 'flag', help: 'Serve the existing dist/ (skip vite build).' },
    timeout: { kind: 'value', arg: 'S', help: 'Seconds allowed per backend (default 3600).' },
    out: { kind: 'value', arg: 'FILE', help: 'Also write the JSON here.' },
  },
  notes: 'Examples:\n  npm run bench:browser -- --preset tiny --steps 2\n  npm run bench:browser -- --preset gpt2-124m --batch 8 --seq 128 --steps 1 --checkpointing on --backends wasm',
};

const BASE_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const WEBGPU_ARGS: Record<Adapter, string[]> = {
  swiftshader: ['--enable-unsafe-webgpu'],
  llvmpipe: ['--use-angle=gl-egl', '--use-webgpu-adapter=opengles', '--enable-unsafe-webgpu'],
};

const r3 = (x: number) => Math.round(x * 1000) / 1000;

// ---------------------------------------------------------------------------------------------------------------
// Processes: everything started here is stopped on the way out (also on errors and signals)

const cleanups: (() => Promise<void>)[] = [];
async function cleanup(): Promise<void> {
  while (cleanups.length) await cleanups.pop()!().catch((e) => note(`cleanup: ${(e as Error).message}`));
}

/** Stops a child started with detached: true (its own process group: npx and the vite it starts). */
function stopGroup(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return done();
    const kill = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    kill('SIGTERM');
  });
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => ok(port));
    });
  });
}

function build(): void {
  note('bench:browser: vite build ...');
  const r = spawnSync('npx', ['vite', 'build'], { cwd: ROOT, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error(`vite build failed (exit ${r.status ?? r.signal})`);
}

async function preview(): Promise<string> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  note(`bench:browser: vite preview on ${url} ...`);
  const child = spawn('npx', ['vite', 'preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort'], {
    cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], detached: true,
  });
  cleanups.push(() => stopGroup(child));
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(`[preview] ${d}`));
  const t0 = Date.now();
  while (Date.now() - t0 < 60_000) {
    if (child.exitCode !== null) throw new Error(`vite preview exited (${child.exitCode})`);
    try {
      const r = await fetch(`${url}/bench.html`);
      if (r.ok) {
        if (!r.headers.get('cross-origin-embedder-policy')) note('bench:browser: warning: preview sends no COEP header (wasm threads need it)');
        return url;
      }
      if (r.status === 404) throw new Error('dist/ has no bench.html: build first (drop --no-build)');
    } catch (e) {
      if ((e as Error).message.includes('bench.html')) throw e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('vite preview did not answer within 60 s');
}

// ---------------------------------------------------------------------------------------------------------------
// One backend in one fresh browser

async function launch(args: string[]): Promise<Browser> {
  const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  const browser = await chromium.launch({ executablePath, args, headless: true });
  cleanups.push(() => browser.close());
  return browser;
}

async function measure(url: string, backend: Backend, adapter: Adapter, s: BenchShape, o: PeftBenchOptions, timeoutS: number, wasmThreads?: number) {
  const browser = await launch(backend === 'webgpu' ? [...BASE_ARGS, ...WEBGPU_ARGS[adapter]] : BASE_ARGS);
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('console', (m) => note(`[page] ${m.text()}`));
    page.on('pageerror', (e) => note(`[pageerror] ${e.message}`));
    page.on('response', (r) => {
      if (r.status() >= 400) note(`[page] ${r.status()} ${r.url()}`);
    });
    await page.goto(`${url}/bench.html`);
    await page.waitForFunction(() => window.peftBenchReady === true, undefined, { timeout: 60_000 });
    const opts: PeftBenchOptions = {
      ...o,
      ...(backend === 'webgpu' && adapter === 'llvmpipe' ? { webgpuFeatureLevel: 'compatibility' as const } : {}),
      ...(backend === 'wasm' && wasmThreads ? { wasmThreads } : {}),
    };
    let timer: NodeJS.Timeout | undefined;
    const reply = await Promise.race([
      page.evaluate(([b, shape, op]) => window.peftBench(b, shape, op), [backend, s, opts] as const),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no result within ${timeoutS} s`)), timeoutS * 1000))),
    ]).finally(() => clearTimeout(timer));
    return { reply: reply as PeftBenchReply, version: browser.version() };
  } finally {
    await browser.close();
  }
}

function entry(reply: PeftBenchReply) {
  const { details, backend: _b, ...figures } = reply.result;
  return {
    available: true,
    ...details,
    ...figures,
    efficiency: figures.step_gflops === null ? null : r3(figures.step_gflops / figures.matmul_gflops),
    reason: reply.reason,
  };
}

// ---------------------------------------------------------------------------------------------------------------

async function benchBrowser(argv: string[]): Promise<void> {
  const p = parseArgv(SPEC, argv);
  if (p.help) return void console.log(helpText(SPEC));
  const s = shapeOf(p);
  const checkpointing = onOff(p, 'checkpointing');
  const steps = int(p, 'steps') ?? 3;
  if (steps < 0) throw usage('--steps must be >= 0');
  const matmulRuns = int(p, 'matmul-runs') ?? 5;
  if (matmulRuns < 1) throw usage('--matmul-runs must be >= 1');
  const timeoutS = int(p, 'timeout') ?? 3600;
  const backends = (list(p, 'backends') ?? ['wasm', 'webgpu']).map((b) => {
    if (b !== 'wasm' && b !== 'webgpu') throw usage(`--backends: "${b}" is not a browser backend (wasm, webgpu)`);
    return b as Backend;
  });
  const adapterArg = str(p, 'webgpu-adapter') ?? 'llvmpipe';
  if (!ADAPTERS.includes(adapterArg as Adapter)) throw usage(`--webgpu-adapter must be llvmpipe or swiftshader, got "${adapterArg}"`);
  let adapter = adapterArg as Adapter;

  const wasmThreads = int(p, 'wasm-threads');
  if (wasmThreads !== undefined && (wasmThreads < 1 || wasmThreads > 8)) throw usage('--wasm-threads must be 1 to 8');

  if (p.opts.get('no-build') !== 'true') build();
  const url = await preview();
  const o: PeftBenchOptions = { steps, checkpointing, matmulRuns };
  const results: Record<string, Record<string, unknown>> = {};
  const notes: string[] = [];
  let chromiumVersion: string | null = null;
  let page: PeftBenchReply['page'] | null = null;
  for (const b of backends) {
    note(`bench:browser: ${b}${b === 'webgpu' ? ` (${adapter})` : ''} ...`);
    try {
      const m = await measure(url, b, adapter, s, o, timeoutS, wasmThreads).catch(async (e) => {
        if (b !== 'webgpu' || adapter !== 'llvmpipe') throw e;
        notes.push(`WebGPU on ANGLE/llvmpipe (compatibility adapter) failed: ${(e as Error).message.split('\n')[0]}; fell back to SwiftShader.`);
        note(`bench:browser: llvmpipe failed (${(e as Error).message.split('\n')[0]}); trying SwiftShader ...`);
        adapter = 'swiftshader';
        return measure(url, b, adapter, s, o, timeoutS);
      });
      chromiumVersion = m.version;
      page ??= m.reply.page;
      results[b] = { ...entry(m.reply), ...(b === 'webgpu' ? { webgpu_adapter: adapter, peak_heap_bytes: null } : {}) };
    } catch (e) {
      results[b] = { available: false, error: (e as Error).message.split('\n')[0] };
    }
  }

  const wasm = results.wasm as { available?: boolean; loss_first_exact?: number; threads?: boolean; threads_count?: number | null } | undefined;
  const gpu = results.webgpu as { available?: boolean; loss_first_exact?: number } | undefined;
  let crossCheck: Record<string, unknown> | null = null;
  if (wasm?.available && gpu?.available && wasm.loss_first_exact !== undefined && gpu.loss_first_exact !== undefined) {
    const diff = Math.abs(wasm.loss_first_exact - gpu.loss_first_exact);
    crossCheck = { loss_first: { wasm: wasm.loss_first_exact, webgpu: gpu.loss_first_exact }, abs_diff: diff, tolerance: 1e-3, ok: diff <= 1e-3 };
    if (diff > 1e-3) notes.push(`first-step loss differs between wasm and webgpu by ${diff} (> 1e-3)`);
  }
  if (wasm?.available && wasm.threads === false) notes.push('wasm ran single-threaded: the page was not cross-origin isolated or SharedArrayBuffer is missing');
  const cores = page?.hardwareConcurrency ?? 0;
  if (wasm?.available && wasm.threads && wasm.threads_count != null) {
    notes.push(`wasm ran ${wasm.threads_count} XNNPACK thread${wasm.threads_count === 1 ? '' : 's'} on ${cores} logical core${cores === 1 ? '' : 's'}${wasmThreads ? ` (--wasm-threads ${wasmThreads})` : " (the studio's default)"}.`);
  }

  const res = {
    model: { ...s, lora: { r: s.r, target_modules: s.targets } },
    batch: s.batch,
    seq: s.seq,
    timed_steps: steps,
    browser: chromiumVersion ? `Chromium ${chromiumVersion}` : null,
    cpu: `${cpus()[0]?.model ?? 'unknown'} x${cpus().length}`,
    page,
    backends: results,
    cross_check: crossCheck,
    notes,
  };
  const out = str(p, 'out');
  if (out) writeJson(out, res);
  process.stdout.write(`${JSON.stringify(res)}\n`);
  if (crossCheck && crossCheck.ok === false) process.exitCode = 1;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    note(`bench:browser: ${sig}, shutting down`);
    void cleanup().finally(() => process.exit(130));
  });
}

runCli(() => benchBrowser(process.argv.slice(2)).finally(cleanup)).then((code) => {
  if (code) process.exitCode = code;
});
