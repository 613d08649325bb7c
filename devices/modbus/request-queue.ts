/**
 * One request at a time on a physical bus (an RS-485 line or a TCP connection): a multi-drop line
 * carries one frame at a time, and jsmodbus clients sharing a port must not interleave. Bounded: past
 * `limit` waiting requests a new one is refused at once, and counted.
 */
export class RequestQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  refused = 0;

  constructor(readonly limit: number) {}

  get depth(): number {
    return this.waiting;
  }

  /** Runs `work` after everything queued before it; rejects with `onFull()` when the queue is full. */
  run<T>(work: () => Promise<T>, onFull: () => Error): Promise<T> {
    if (this.waiting >= this.limit) {
      this.refused++;
      return Promise.reject(onFull());
    }
    this.waiting++;
    const result = this.tail.then(work).finally(() => {
      this.waiting--;
    });
    this.tail = result.catch(() => undefined);
    return result;
  }
}
