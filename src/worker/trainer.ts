/**
 * Drives a TrainingSession one optimizer step at a time and reports as it goes. Between steps it yields to
 * the event loop, so pause, stop, export and playground commands get handled mid-run; every command that
 * touches the session goes through the same Lock, so none of them runs inside a step.
 *
 * The last adapter exported from a finite-loss state is kept: after a failure (NaN loss, lost device, out of
 * memory) export still hands out good weights.
 *
 * With a RunRecorder (runs.ts) the run is kept in the browser: a checkpoint at every save point (save_steps, or
 * each evaluation), at pause, stop, completion and failure (the last good step), and its status at the end.
 */
import { estimateRemaining } from '../engine/train/eta';
import { describeError, EngineError, isOutOfMemory } from '../engine/errors';
import type { TrainingSession } from '../engine/session';
import type { AdapterFiles, RunState, WorkerEvent } from './protocol';
import type { RunRecorder } from './runs';

type Post = (e: WorkerEvent, transfer?: Transferable[]) => void;

/** A FIFO mutex over async work. */
export class Lock {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/** SEQ_2_SEQ_LM's scores from greedy generation, when the evaluation has them. */
function generationScores(m: { exactMatch?: number; chrf?: number; rougeL?: number }) {
  return m.exactMatch !== undefined ? { exactMatch: m.exactMatch, chrf: m.chrf, rougeL: m.rougeL } : {};
}

const macrotask = () => new Promise<void>((r) => setTimeout(r, 0));
/** The shortest gap between two evalProgress messages (the first and last of a phase always go). */
const EVAL_PROGRESS_MS = 200;

/** Set by the worker once the WebGPU device is lost: whatever fails after that failed because of it. */
let deviceLost: string | null = null;
const lostWaiters = new Set<(e: Error) => void>();
export function markDeviceLost(message: string | null): void {
  deviceLost = message;
  if (message) for (const reject of [...lostWaiters]) reject(new EngineError('DEVICE_LOST', message));
}

/**
 * Settles as `p` does, or rejects once the WebGPU device is lost: work queued on a lost device may never finish
 * (SwiftShader's readback after device.destroy() never resolves), and the run must end so the page can move on.
 */
function unlessLost<T>(p: Promise<T>): Promise<T> {
  if (deviceLost) return Promise.reject(new EngineError('DEVICE_LOST', deviceLost));
  return new Promise<T>((resolve, reject) => {
    lostWaiters.add(reject);
    p.then(resolve, reject).finally(() => lostWaiters.delete(reject));
  });
}

export function errorCode(e: unknown): string {
  if (deviceLost) return 'DEVICE_LOST';
  if (e instanceof EngineError) return e.code;
  const m = e instanceof Error ? e.message : String(e);
  if (isOutOfMemory(m)) return 'OUT_OF_MEMORY';
  if (/device (was )?lost|GPUDevice/i.test(m)) return 'BACKEND';
  return 'INTERNAL';
}

export class TrainerRun {
  state: RunState = 'starting';
  private stopRequested = false;
  private resume: (() => void) | null = null;
  private lastGood: { step: number; files: { weights: Uint8Array; config: string } } | null = null;
  private healthy = true;
  private readonly t0 = performance.now();
  private pausedMs = 0;
  /** How long each evaluation of this session took, for the ETA. */
  private evalMs: number[] = [];

  constructor(
    readonly runId: number,
    readonly session: TrainingSession,
    private readonly lock: Lock,
    private readonly post: Post,
    /** Keeps the run's record and checkpoints (none: nothing is kept). */
    readonly recorder: RunRecorder | null = null,
    /** Training time before this session of the run (a resumed run's earlier sessions). */
    private readonly elapsedBeforeMs = 0,
  ) {}

  /** Training time of the run so far, pauses excluded. */
  private elapsed(): number {
    return this.elapsedBeforeMs + performance.now() - this.t0 - this.pausedMs;
  }

  /** A checkpoint of the run in the browser, when something changed since the last one. */
  private async save(): Promise<void> {
    if (!this.recorder || !this.healthy) return;
    await this.recorder.save((best) => this.lock.run(() => this.session.checkpoint({ outputDir: this.recorder!.id, bestModelCheckpoint: best })), this.elapsed());
  }

  private setState(s: RunState, requestId?: number) {
    this.state = s;
    this.post({ type: 'state', runId: this.runId, state: s, requestId });
  }

  pause(requestId: number) {
    if (this.state === 'running') this.setState('paused', requestId);
  }

  resumeRun(requestId: number) {
    if (this.state !== 'paused') return;
    this.setState('running', requestId);
    this.resume?.();
  }

  stop(requestId: number) {
    this.stopRequested = true;
    if (this.state === 'running' || this.state === 'paused') this.setState('stopping', requestId);
    this.resume?.();
  }

  /** Adapter files from the session (when its weights are finite), else the last good ones. */
  async exportFiles(): Promise<{ step: number; files: AdapterFiles } | null> {
    if (this.healthy) {
      try {
        const f = await this.session.exportAdapter();
        this.lastGood = { step: this.session.completedSteps, files: { weights: f['adapter_model.safetensors'], config: f['adapter_config.json'] } };
      } catch (e) {
        this.post({ type: 'log', level: 'warn', message: `Export of the current weights failed (${describeError(e)}); offering the last good adapter.` });
      }
    }
    if (!this.lastGood) return null;
    const w = this.lastGood.files.weights;
    // A fresh buffer per message: it is transferred, and the kept copy must stay usable.
    const buf = w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength) as ArrayBuffer;
    return { step: this.lastGood.step, files: { 'adapter_model.safetensors': buf, 'adapter_config.json': this.lastGood.files.config } };
  }

  /** Posts a checkpoint event with the current (or last good) adapter. */
  async checkpoint(requestId?: number): Promise<boolean> {
    const c = await this.exportFiles();
    if (!c) return false;
    this.post({ type: 'checkpoint', requestId, runId: this.runId, step: c.step, files: c.files }, [c.files['adapter_model.safetensors']]);
    return true;
  }

  private async evaluate(step: number) {
    if (!this.session.hasValidation) return;
    const t0 = performance.now();
    // Progress at the start of each phase, at its end, and at most every EVAL_PROGRESS_MS between.
    let last = -Infinity;
    const m = await this.session.evaluate(undefined, (p) => {
      const now = performance.now();
      if (p.done !== 0 && p.done !== p.total && now - last < EVAL_PROGRESS_MS) return;
      last = now;
      this.post({ type: 'evalProgress', runId: this.runId, step, ...p });
    });
    const durationMs = performance.now() - t0;
    this.evalMs.push(durationMs);
    if (!Number.isFinite(m.evalLoss)) {
      this.healthy = false;
      throw new EngineError('NAN_LOSS', `Evaluation loss became ${m.evalLoss} at step ${step}. Lower the learning rate.`);
    }
    this.post({ type: 'evalMetrics', runId: this.runId, metrics: { step, evalLoss: m.evalLoss, accuracy: m.accuracy, f1: m.f1, confusion: m.confusion, classes: m.classes, ...generationScores(m), durationMs } });
    if (m.confusion && m.classes) this.recorder?.noteConfusion({ step, matrix: m.confusion, classes: m.classes.map(({ precision, recall, f1, support }) => ({ precision, recall, f1, support })) });
    await this.recorder?.noteEval(step === 0 ? { evalLoss: m.evalLoss, accuracy: m.accuracy, f1: m.f1, ...generationScores(m) } : undefined, this.elapsed());
  }

  /** Whether the session's last log entry is an evaluation at its current step. */
  private evaluatedNow(): boolean {
    const last = this.session.logHistory[this.session.logHistory.length - 1];
    return !!last && last.step === this.session.completedSteps && last.eval_loss !== undefined;
  }

  /** The adapter the run ends with: the best checkpoint's when it loads the best model at the end. */
  private async finalAdapter(): Promise<void> {
    const best = await this.recorder?.bestAdapter();
    if (!best) {
      await this.checkpoint();
      return;
    }
    const s = this.session;
    this.post(
      { type: 'checkpoint', runId: this.runId, step: best.step, files: best.files, best: { metric: s.args.metricForBestModel, value: s.bestMetric ?? NaN } },
      [best.files['adapter_model.safetensors']],
    );
  }

  /** Runs to completion, stop or failure; never throws. */
  async run(evalSteps: number): Promise<void> {
    const s = this.session;
    const total = s.totalSteps;
    const resumed = s.completedSteps > 0;
    this.setState('running');
    let reason: 'completed' | 'stopped' | 'failed' = 'completed';
    let failure: { code: string; message: string } | undefined;
    try {
      // Step 0 evaluation gives the chart its starting point and the base model's accuracy (a resumed run
      // has it from its first session, and must not log an evaluation its uninterrupted twin would not).
      if (!resumed) await this.lock.run(() => this.evaluate(0));
      else this.post({ type: 'progress', runId: this.runId, step: s.completedSteps, totalSteps: total, epoch: s.epoch, elapsedMs: this.elapsed(), etaMs: null, tokensPerSec: 0 });
      await this.checkpoint();
      while (!s.done) {
        if (this.stopRequested) break;
        if (this.state === 'paused') {
          const p0 = performance.now();
          await this.checkpoint();
          // A paused run is kept as it is: after a reload it resumes from here.
          await this.save();
          await this.recorder?.paused(this.elapsed());
          await new Promise<void>((r) => (this.resume = r));
          this.resume = null;
          this.pausedMs += performance.now() - p0;
          if (!this.stopRequested) await this.recorder?.running();
          continue;
        }
        const m = await unlessLost(this.lock.run(() => s.step()));
        if (!Number.isFinite(m.loss)) {
          this.healthy = false;
          throw new EngineError('NAN_LOSS', `The training loss became ${m.loss} at step ${m.step}. Lower the learning rate or set max grad norm; the last good adapter is still downloadable.`);
        }
        this.post({ type: 'metrics', runId: this.runId, metrics: { step: m.step, epoch: m.epoch, loss: m.loss, lr: m.lr, tokensPerSec: m.tokensPerSec, gradNorm: m.gradNorm } });
        const elapsed = this.elapsed();
        const eta = estimateRemaining({ step: m.step, totalSteps: total, elapsedMs: elapsed, evalMs: this.evalMs, evalEvery: evalSteps, hasValidation: s.hasValidation });
        this.post({
          type: 'progress', runId: this.runId, step: m.step, totalSteps: total, epoch: m.epoch, elapsedMs: elapsed,
          etaMs: eta.etaMs, tokensPerSec: m.tokensPerSec, msPerStep: eta.msPerStep,
        });
        if (evalSteps > 0 && m.step % evalSteps === 0 && m.step < total) {
          await unlessLost(this.lock.run(() => this.evaluate(m.step)));
          await unlessLost(this.checkpoint());
        }
        // Early stopping ends the loop: the end's save below covers that step.
        if (s.saveDue(m.step) && !s.done) await unlessLost(this.save());
        await macrotask();
      }
      if (this.stopRequested && !s.done) reason = 'stopped';
      if (s.completedSteps > 0 && (evalSteps > 0 || reason === 'completed') && !this.evaluatedNow()) await this.lock.run(() => this.evaluate(s.completedSteps));
      await this.save();
      await this.finalAdapter();
    } catch (e) {
      reason = 'failed';
      // A NaN step leaves non-finite weights; any other failure (out of memory, a lost device) fails before the
      // optimizer updates, so the current weights are the last good ones (export falls back if they are gone).
      const code = errorCode(e);
      // A lost device's tensors can't be read back (or read back as garbage): the last good adapter and the last
      // complete checkpoint are what is left, and nothing is written over them.
      const lost = code === 'DEVICE_LOST';
      if (code === 'NAN_LOSS' || lost) this.healthy = false;
      failure = { code, message: lost && !(e instanceof EngineError && e.code === 'DEVICE_LOST') ? `${deviceLost}; ${describeError(e)}` : describeError(e) };
      this.post({ type: 'error', runId: this.runId, code, message: failure.message });
      await this.checkpoint();
      // The session is at its last good step (a failed step changes nothing): that is what a resume continues.
      if (!lost) await this.save().catch(() => undefined);
    }
    await this.recorder?.finish(reason, this.elapsed(), failure).catch(() => undefined);
    this.state = 'idle';
    this.post({ type: 'state', runId: this.runId, state: 'idle' });
    this.post({ type: 'done', runId: this.runId, reason, step: s.completedSteps });
  }
}
