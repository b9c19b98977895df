import type { EngineHost, HostDeps } from './host.ts';
import { createEngineHost } from './host.ts';
import type { WorkerLike } from './client.ts';
import type { Reply, Request } from './protocol.ts';

/**
 * An in-memory stand-in for the engine Worker: the real host behind a fake Worker object, with
 * asynchronous delivery both ways like postMessage. Tests can make it "crash" (an error event).
 */
export interface FakeWorker extends WorkerLike {
  readonly host: EngineHost;
  readonly sent: Request[];
  terminated: boolean;
  crash(message: string): void;
}

export function fakeWorker(deps: HostDeps): FakeWorker {
  const listeners: { message: ((e: MessageEvent<Reply>) => void)[]; error: ((e: Event) => void)[] } = { message: [], error: [] };
  const sent: Request[] = [];
  const worker: FakeWorker = {
    sent,
    terminated: false,
    host: createEngineHost(deps, (reply) => {
      setTimeout(() => {
        if (worker.terminated) return;
        for (const l of listeners.message) l({ data: reply } as MessageEvent<Reply>);
      }, 0);
    }),
    postMessage(message) {
      sent.push(message);
      setTimeout(() => {
        if (!worker.terminated) void worker.host.handle(message);
      }, 0);
    },
    terminate() {
      worker.terminated = true;
    },
    addEventListener(type: 'message' | 'error' | 'messageerror', listener: (e: never) => void) {
      if (type === 'message') listeners.message.push(listener as (e: MessageEvent<Reply>) => void);
      else if (type === 'error') listeners.error.push(listener as (e: Event) => void);
    },
    crash(message) {
      const event = { message, preventDefault() {} } as unknown as Event;
      for (const l of listeners.error) l(event);
    },
  };
  return worker;
}
