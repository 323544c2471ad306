// The live connections of one edge, by connection id. An entry is added on open and removed
// in the close handler, so the registry holds exactly the sockets that may still be written.
import type { Connection } from "./connection.js";

export class ConnectionRegistry {
  private readonly byId = new Map<string, Connection>();
  private serial = 0;

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
