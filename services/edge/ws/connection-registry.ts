// The live connections of one edge, by connection id. An entry is added on open and removed
// in the close handler, so the registry holds exactly the sockets that may still be written.
import { randomInt } from "node:crypto";
import type { Connection } from "./connection.js";

/** Serials start anywhere below 2^47: a collision across restarts is vanishingly unlikely. */
const SERIAL_START_RANGE = 2 ** 47;

export class ConnectionRegistry {
  private readonly byId = new Map<string, Connection>();
  /**
   * Starts at a random point so a restarted edge with the same id (same pod name and pid)
   * never reissues a connection id a session may still hold state for.
   */
  private serial = randomInt(SERIAL_START_RANGE);

  /** A number never handed out before by this registry (the serial part of a connection id). */
  nextSerial(): number {
    return ++this.serial;
  }

  add(conn: Connection): void {
    this.byId.set(conn.id, conn);
  }

  get(id: string): Connection | undefined {
    return this.byId.get(id);
  }

  /** Re-keys `conn` as connection `id` of `shard` (a `rename` packet). */
  rename(conn: Connection, id: string, shard: number): void {
    this.byId.delete(conn.id);
    conn.id = id;
    conn.shard = shard;
    this.byId.set(id, conn);
  }

  delete(id: string): void {
    this.byId.delete(id);
  }

  get size(): number {
    return this.byId.size;
  }

  /** Live connections; removing entries while iterating is safe. */
  values(): IterableIterator<Connection> {
    return this.byId.values();
  }
}
