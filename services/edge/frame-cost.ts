// What one inbound frame costs in token-bucket tokens (bytes). Every frame costs the edge an
// XADD and the session a stream entry and a snapshot write whatever its size, so a frame is
// charged at least `minFrameCostBytes` (config.inboundFrameCostBytes): the bucket then bounds
// frames per second as well as bytes per second. The same cost is charged to the bucket and to
// the frames a connection holds while the edge is paused (publisher.ts), so both bounds hold.

/** Tokens, in bytes, that a frame of `byteLength` bytes costs. */
export function inboundFrameCostBytes(byteLength: number, minFrameCostBytes: number): number {
  return Math.max(byteLength, minFrameCostBytes);
}
