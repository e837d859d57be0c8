/**
 * Drives a TrainingSession one optimizer step at a time and reports as it goes. Between steps it yields to
 * the event loop, so pause, stop, export and playground commands get handled mid-run; every command that
 * touches the session goes through the same Lock, so none of them runs inside a step.
 *
 * The last adapter exported from a finite-loss state is kept: after a failure (NaN loss, lost device, out of
 * memory) export still hands out good weights.
 */
import { describeError, EngineError, isOutOfMemory } from '../engine/errors';
import type { TrainingSession } from '../engine/session';
import type { AdapterFiles, RunState, WorkerEvent } from './protocol';

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

const macrotask = () => new Promise<void>((r) => setTimeout(r, 0));

export function errorCode(e: unknown): string {
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

  constructor(
    readonly runId: number,
    readonly session: TrainingSession,
    private readonly lock: Lock,
    private readonly post: Post,
  ) {}

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
    const m = await this.session.evaluate();
    if (!Number.isFinite(m.evalLoss)) throw new EngineError('NAN_LOSS', `Evaluation loss became ${m.evalLoss} at step ${step}. Lower the learning rate.`);
    this.post({ type: 'evalMetrics', runId: this.runId, metrics: { step, evalLoss: m.evalLoss, accuracy: m.accuracy, f1: m.f1 } });
  }

  /** Runs to completion, stop or failure; never throws. */
  async run(evalSteps: number): Promise<void> {
    const s = this.session;
    const total = s.totalSteps;
    this.setState('running');
    let reason: 'completed' | 'stopped' | 'failed' = 'completed';
    try {
      // Step 0 evaluation gives the chart its starting point and the base model's accuracy.
      await this.lock.run(() => this.evaluate(0));
      await this.checkpoint();
      while (!s.done) {
        if (this.stopRequested) break;
        if (this.state === 'paused') {
          const p0 = performance.now();
          await this.checkpoint();
          await new Promise<void>((r) => (this.resume = r));
          this.resume = null;
          this.pausedMs += performance.now() - p0;
          continue;
        }
        const m = await this.lock.run(() => s.step());
        if (!Number.isFinite(m.loss)) {
          this.healthy = false;
          throw new EngineError('NAN_LOSS', `The training loss became ${m.loss} at step ${m.step}. Lower the learning rate or set max grad norm; the last good adapter is still downloadable.`);
        }
        this.post({ type: 'metrics', runId: this.runId, metrics: { step: m.step, epoch: m.epoch, loss: m.loss, lr: m.lr, tokensPerSec: m.tokensPerSec, gradNorm: m.gradNorm } });
        const elapsed = performance.now() - this.t0 - this.pausedMs;
        this.post({
          type: 'progress', runId: this.runId, step: m.step, totalSteps: total, epoch: m.epoch, elapsedMs: elapsed,
          etaMs: (elapsed / m.step) * (total - m.step), tokensPerSec: m.tokensPerSec,
        });
        if (evalSteps > 0 && m.step % evalSteps === 0 && m.step < total) {
          await this.lock.run(() => this.evaluate(m.step));
          await this.checkpoint();
        }
        await macrotask();
      }
      if (this.stopRequested) reason = 'stopped';
      if (s.completedSteps > 0 && (evalSteps > 0 || reason === 'completed')) await this.lock.run(() => this.evaluate(s.completedSteps));
      await this.checkpoint();
    } catch (e) {
      reason = 'failed';
      // A NaN step leaves non-finite weights; any other failure (out of memory, a lost device) fails before the
      // optimizer updates, so the current weights are the last good ones (export falls back if they are gone).
      const code = errorCode(e);
      if (code === 'NAN_LOSS') this.healthy = false;
      this.post({ type: 'error', runId: this.runId, code, message: describeError(e) });
      await this.checkpoint();
    }
    this.state = 'idle';
    this.post({ type: 'state', runId: this.runId, state: 'idle' });
    this.post({ type: 'done', runId: this.runId, reason, step: s.completedSteps });
  }
}
