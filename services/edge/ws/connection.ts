// What the edge keeps per socket: its address (connection id, shard), its limits' state and how
// it ends. Everything here is freed when the socket closes; nothing must survive the edge.
import type { WebSocket } from "uWebSockets.js";
import type { OriginMemory } from "../../shared/bus/origin.js";
import type { ShardPacket } from "../../shared/bus/packets.js";
import type { ClientSocket } from "../client-socket.js";
import type { CannedCloseName } from "../close-reasons.js";
import type { TokenBucket } from "../token-bucket.js";

/** uWS user data: empty between upgrade and open, then the socket's connection. */
export interface SocketData {
  conn: Connection | undefined;
  /** The client's address key (client-address.ts), found at the upgrade. */
  address: string;
}

export type EdgeSocket = WebSocket<SocketData>;

/** A packet waiting for the bus while the edge is paused (publisher.ts). */
export interface HeldPacket {
  packet: ShardPacket;
  /** Its inbound cost in tokens (frame-cost.ts); 0 for `open` and `close`. */
  costBytes: number;
  /** Told once the packet is stored (or failed to be), for packets whose sender waits. */
  onStored?(err?: unknown): void;
}

export interface Connection {
  /**
   * `<edgeId>.<shard>.<serial>` (conn-id.ts). Changed only by a `rename` packet (XEP-0198: a
   * session resumed on this socket lives on another shard): from then on its frames go there.
   */
  id: string;
  shard: number;
  /** The client's address key, for the per-address limits (admission.ts). */
  readonly address: string;
  /** The client's socket (a uWS WebSocket, or a TCP one: tcp/); valid until `closed`. */
  readonly ws: ClientSocket;
  readonly openedAtMs: number;
  /** Monotonic time of the last message from the client (WebSocket pings do not count). */
  lastInboundAtMs: number;
  /**
   * Frames handed to the shard as `data` packets; 0 means the client has not sent its <open/>
   * yet. Whitespace keepalives (keepalive.ts) are dropped, so they do not count.
   */
  dataFrames: number;
  /** Charged each frame's cost (frame-cost.ts), so it bounds frames as well as bytes. */
  readonly bucket: TokenBucket;
  /**
   * A frame from the session has been written to the socket, so the client has its stream
   * header; until then a canned stream error is preceded by one (stream-header.ts).
   */
  wroteSessionFrame: boolean;
  /** Why the edge is ending the socket, set just before it calls end(). */
  closeReason: CannedCloseName | undefined;
  /** The close handler ran: the close packet is published and `ws` is gone. */
  closed: boolean;
  /**
   * Packets not yet handed to the bus, in order (only while the edge or the shard is paused);
   * made on the first one, as most connections never hold any.
   */
  held?: HeldPacket[];
  /** Sum of `held[].costBytes`: bounds the held frames' count as well as their bytes. */
  heldCostBytes: number;
  /** A publish failed: the stream has a hole, so no further data is published. */
  broken: boolean;
  /** The last origin written per origin connection (origin.ts); made on the first one. */
  origins?: OriginMemory;
  /** This process's own session wrote to it without the inbox (in-process-edge-bus.ts). */
  writtenInProcess?: boolean;
}
