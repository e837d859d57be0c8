/**
 * The UI's handle on the training worker: sends WorkerCommands, resolves a request's promise with the first
 * event that echoes its requestId (rejects on an `error` event), and hands every event to listeners.
 * A crash of the worker itself (a script error, a failed module load) is reported as an error event too.
 */
import type { WorkerCommand, WorkerEvent } from '../worker/protocol';

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
export type Command = DistributiveOmit<WorkerCommand, 'requestId'>;
type Listener = (e: WorkerEvent) => void;

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

export class WorkerClient {
  private worker: Worker;
  private nextId = 1;
  private pending = new Map<number, { resolve: (e: WorkerEvent) => void; reject: (e: Error) => void }>();
  private listeners = new Set<Listener>();

  constructor() {
    this.worker = new Worker(new URL('../worker/worker.ts', import.meta.url), { type: 'module', name: 'peft-studio-trainer' });
    this.worker.addEventListener('message', (ev: MessageEvent<WorkerEvent>) => this.dispatch(ev.data));
    this.worker.addEventListener('error', (ev) => {
      ev.preventDefault();
      this.dispatch({
        type: 'error',
        code: 'WORKER',
        message: `The training worker stopped: ${ev.message || 'it could not start or was shut down'}. Reload the page to restart it (download the adapter first).`,
      });
    });
    this.worker.addEventListener('messageerror', () => this.dispatch({ type: 'error', code: 'WORKER', message: 'A message from the worker could not be read.' }));
  }

  private dispatch(e: WorkerEvent) {
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

  /** Sends a command without waiting for a reply (pause, resume, stop). */
  send(cmd: Command): number {
    const requestId = this.nextId++;
    this.worker.postMessage({ ...cmd, requestId } as WorkerCommand);
    return requestId;
  }

  /** Sends a command and resolves with its reply event of type `T`. */
  request<T extends WorkerEvent['type']>(cmd: Command, _expect: T): Promise<Extract<WorkerEvent, { type: T }>> {
    const requestId = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { resolve: resolve as (e: WorkerEvent) => void, reject });
      this.worker.postMessage({ ...cmd, requestId } as WorkerCommand);
    });
  }
}

let client: WorkerClient | null = null;

/** The one worker of the page, created on first use. */
export function worker(): WorkerClient {
  client ??= new WorkerClient();
  return client;
}
