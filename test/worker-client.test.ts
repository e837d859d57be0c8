/**
 * The page's worker client with a fake Worker: replies resolve their request, error replies reject it, and a
 * crash of the worker (an `error` or `messageerror` event) rejects every pending request, refuses later ones
 * and is reported once to the crash listeners; a terminate() for a restart rejects without a crash report.
 */
import { describe, expect, it, vi } from 'vitest';
import { RequestError, WorkerClient, type WorkerLike } from '../src/state/worker-client';

class FakeWorker implements WorkerLike {
  sent: { type: string; requestId: number }[] = [];
  terminated = false;
  private handlers = new Map<string, ((ev: never) => void)[]>();
  postMessage(m: unknown) {
    this.sent.push(m as { type: string; requestId: number });
  }
  addEventListener(type: string, l: (ev: never) => void) {
    this.handlers.set(type, [...(this.handlers.get(type) ?? []), l]);
  }
  terminate() {
    this.terminated = true;
  }
  emit(type: string, ev: object) {
    for (const l of this.handlers.get(type) ?? []) l(ev as never);
  }
  reply(data: object) {
    this.emit('message', { data });
  }
}

function setup() {
  const fake = new FakeWorker();
  const client = new WorkerClient(() => fake);
  return { fake, client };
}

describe('WorkerClient', () => {
  it('resolves a request with its reply and rejects it with its error', async () => {
    const { fake, client } = setup();
    const events = vi.fn();
    client.on(events);
    const cache = client.request({ type: 'listCache' }, 'cache');
    const tree = client.request({ type: 'inspect', task: 'CAUSAL_LM' }, 'tree');
    const [a, b] = fake.sent;
    fake.reply({ type: 'error', requestId: b.requestId, code: 'NO_MODEL', message: 'Load a model first.' });
    fake.reply({ type: 'cache', requestId: a.requestId, persistent: true, models: [] });
    await expect(cache).resolves.toMatchObject({ type: 'cache', persistent: true });
    await expect(tree).rejects.toMatchObject({ code: 'NO_MODEL', message: 'Load a model first.' });
    expect(events).toHaveBeenCalledTimes(2);
  });

  it('rejects every pending request when the worker crashes, and every later one at once', async () => {
    const { fake, client } = setup();
    const crashed = vi.fn();
    client.onCrash(crashed);
    const pending = [client.request({ type: 'listCache' }, 'cache'), client.request({ type: 'downloadModel' }, 'model'), client.request({ type: 'export' }, 'checkpoint')];
    const preventDefault = vi.fn();
    fake.emit('error', { message: 'Uncaught RangeError: Array buffer allocation failed', preventDefault });
    for (const p of pending) {
      const e = await p.catch((x: unknown) => x);
      expect(e).toBeInstanceOf(RequestError);
      expect(e).toMatchObject({ code: 'WORKER', message: 'The training worker crashed: Uncaught RangeError: Array buffer allocation failed' });
    }
    expect(preventDefault).toHaveBeenCalled();
    expect(fake.terminated).toBe(true);
    expect(crashed).toHaveBeenCalledExactlyOnceWith('Uncaught RangeError: Array buffer allocation failed');
    expect(client.crashReason).toBe('Uncaught RangeError: Array buffer allocation failed');
    // Nothing more goes to the dead worker; requests fail without waiting.
    const n = fake.sent.length;
    await expect(client.request({ type: 'listCache' }, 'cache')).rejects.toMatchObject({ code: 'WORKER' });
    client.send({ type: 'pause' });
    expect(fake.sent.length).toBe(n);
    // A second error event is the same crash.
    fake.emit('error', { message: 'again' });
    expect(crashed).toHaveBeenCalledTimes(1);
  });

  it('treats an unreadable message as a crash too, with a reason when the error event has none', async () => {
    const a = setup();
    const p = a.client.request({ type: 'listCache' }, 'cache');
    a.fake.emit('messageerror', {});
    await expect(p).rejects.toMatchObject({ message: 'The training worker crashed: a message from the worker could not be read' });
    const b = setup();
    const q = b.client.request({ type: 'listCache' }, 'cache');
    b.fake.emit('error', { message: '' });
    await expect(q).rejects.toMatchObject({ message: 'The training worker crashed: it could not start or stopped unexpectedly' });
  });

  it('terminate() for a restart rejects what is pending without reporting a crash', async () => {
    const { fake, client } = setup();
    const crashed = vi.fn();
    client.onCrash(crashed);
    const p = client.request({ type: 'listCache' }, 'cache');
    client.terminate();
    await expect(p).rejects.toMatchObject({ code: 'WORKER', message: 'The training worker was restarted.' });
    expect(fake.terminated).toBe(true);
    expect(crashed).not.toHaveBeenCalled();
    // A late reply from the old worker changes nothing.
    fake.reply({ type: 'cache', requestId: fake.sent[0].requestId, persistent: true, models: [] });
  });
});
