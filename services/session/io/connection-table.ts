// The connections this session process currently serves, with one promise chain per
// connection so that its packets, timers and kicks are applied one at a time, in order.
import type { ConnState } from "../core/connection.js";

export class ConnectionTable {
  private readonly conns = new Map<string, ConnState>();
  private readonly tails = new Map<string, Promise<void>>();

  get(connId: string): ConnState | undefined {
    return this.conns.get(connId);
  }

  set(conn: ConnState): void {
    this.conns.set(conn.connId, conn);
  }

  delete(connId: string): void {
    this.conns.delete(connId);
  }

  get size(): number {
    return this.conns.size;
  }

  all(): ConnState[] {
    return [...this.conns.values()];
  }

  /** Runs `work` after every earlier piece of work for the same connection has settled. */
  withConn<T>(connId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(connId) ?? Promise.resolve();
    const result = previous.then(work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(connId, tail);
    tail.then(() => {
      if (this.tails.get(connId) === tail) this.tails.delete(connId);
    });
    return result;
  }
}
