// A connection id names its edge and its shard (DESIGN.md), so any tier can address the
// connection without a lookup: "<edgeId>.<shard>.<serial>". Edge ids are [a-z0-9-].
export interface ConnAddress {
  edgeId: string;
  shard: number;
}

export function makeConnId(edgeId: string, shard: number, serial: number): string {
  return `${edgeId}.${shard}.${serial.toString(36)}`;
}

export function parseConnId(connId: string): ConnAddress {
  const first = connId.indexOf(".");
  const second = connId.indexOf(".", first + 1);
  if (first <= 0 || second <= first + 1) throw new Error(`malformed connection id ${connId}`);
  const shard = Number(connId.slice(first + 1, second));
  if (!Number.isInteger(shard) || shard < 0) throw new Error(`malformed connection id ${connId}`);
  return { edgeId: connId.slice(0, first), shard };
}
