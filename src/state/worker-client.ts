/**
 * The UI's handle on the training worker: sends WorkerCommands, resolves a request's promise with the first
 * event that echoes its requestId (rejects on an `error` event), and hands every event to listeners.
 *
 * A crash of the worker itself (a script error it did not handle, a failed module load, a message that cannot
 * be read) ends the worker: every pending request is rejected with a WORKER error, later requests are refused
 * at once, and crash listeners hear the reason. restartWorker() replaces it with a fresh worker.
 */
import type { WorkerCommand, WorkerEvent } from '../worker/protocol';

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
export type Command = DistributiveOmit<WorkerCommand, 'requestId'>;
type Listener = (e: WorkerEvent) => void;
type CrashListener = (reason: string) => void;

export class RequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** Trying again may work (network failure, timeout, 429, 5xx). */
    readonly retryable = false,
    /** A page that helps (the Hub repo page of a gated model). */
    readonly link?: string,
  ) {
    super(message);
  }
}

/** What the client needs of a Worker (a fake one in tests). */
export interface WorkerLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', l: (ev: MessageEvent) => void): void;
  addEventListener(type: 'error', l: (ev: ErrorEvent) => void): void;
  addEventListener(type: 'messageerror', l: (ev: MessageEvent) => void): void;
  terminate(): void;
}

function spawnWorker(): WorkerLike {
  return new Worker(new URL('../worker/worker.ts', import.meta.url), { type: 'module', name: 'peft-studio-trainer' });
}

export class WorkerClient {
  private worker: WorkerLike;
  private nextId = 1;
  private pending = new Map<number, { resolve: (e: WorkerEvent) => void; reject: (e: Error) => void }>();
  private listeners = new Set<Listener>();
  private crashListeners = new Set<CrashListener>();
  /** Set once the worker is gone: the error every request gets. */
  private gone: RequestError | null = null;
  private reason: string | null = null;

  constructor(create: () => WorkerLike = spawnWorker) {
    this.worker = create();
    this.worker.addEventListener('message', (ev: MessageEvent<WorkerEvent>) => this.dispatch(ev.data));
    this.worker.addEventListener('error', (ev: ErrorEvent) => {
      ev.preventDefault?.();
      this.crash(ev.message || 'it could not start or stopped unexpectedly');
    });
    this.worker.addEventListener('messageerror', () => this.crash('a message from the worker could not be read'));
  }

  /** Why the worker crashed; null while it runs (or after a terminate()). */
  get crashReason(): string | null {
    return this.reason;
  }

  /** The worker is gone: reject everything pending, refuse what comes next, tell the crash listeners. */
  private crash(reason: string): void {
    if (this.gone) return;
    this.reason = reason;
    this.end(new RequestError('WORKER', `The training worker crashed: ${reason}`));
    for (const l of this.crashListeners) l(reason);
  }

  private end(error: RequestError): void {
    this.gone = error;
    try {
      this.worker.terminate();
    } catch {
      // already gone
    }
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(error);
  }

  /** Stops the worker on purpose (a restart): pending requests are rejected, no crash is reported. */
  terminate(): void {
    if (!this.gone) this.end(new RequestError('WORKER', 'The training worker was restarted.'));
  }

  private dispatch(e: WorkerEvent) {
    if (this.gone) return;
    const id = 'requestId' in e ? e.requestId : undefined;
    if (id !== undefined) {
      const p = this.pending.get(id);
      if (p) {
        this.pending.delete(id);
        if (e.type === 'error') p.reject(new RequestError(e.code, e.message, e.retryable ?? false, e.link));
        else p.resolve(e);
      }
    }
    for (const l of this.listeners) l(e);
  }

  on(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  onCrash(l: CrashListener): () => void {
    this.crashListeners.add(l);
    return () => this.crashListeners.delete(l);
  }

  /** Sends a command without waiting for a reply (pause, resume, stop); nothing is sent once the worker is gone. */
  send(cmd: Command): number {
    const requestId = this.nextId++;
    if (!this.gone) this.worker.postMessage({ ...cmd, requestId } as WorkerCommand);
    return requestId;
  }

  /** Sends a command and resolves with its reply event of type `T`. */
  request<T extends WorkerEvent['type']>(cmd: Command, _expect: T): Promise<Extract<WorkerEvent, { type: T }>> {
    if (this.gone) return Promise.reject(this.gone);
    const requestId = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { resolve: resolve as (e: WorkerEvent) => void, reject });
      try {
        this.worker.postMessage({ ...cmd, requestId } as WorkerCommand);
      } catch (e) {
        // A payload that cannot be cloned: this request fails, the worker carries on.
        this.pending.delete(requestId);
        reject(new RequestError('WORKER', `The request could not be sent to the worker: ${(e as Error).message}`));
      }
    });
  }
}

let client: WorkerClient | null = null;
const pageListeners = new Set<Listener>();
const pageCrashListeners = new Set<CrashListener>();

function attach(c: WorkerClient): WorkerClient {
  c.on((e) => pageListeners.forEach((l) => l(e)));
  c.onCrash((r) => pageCrashListeners.forEach((l) => l(r)));
  return c;
}

/** The one worker of the page, created on first use. */
export function worker(): WorkerClient {
  client ??= attach(new WorkerClient());
  return client;
}

/** Listens to the page's worker, whichever it is (a restart keeps the listener). */
export function onWorkerEvent(l: Listener): void {
  pageListeners.add(l);
}

export function onWorkerCrash(l: CrashListener): void {
  pageCrashListeners.add(l);
}

/** Ends the page's worker (crashed or not) and starts a fresh one. */
export function restartWorker(): WorkerClient {
  client?.terminate();
  client = attach(new WorkerClient());
  return client;
}
