// What the edge needs of a client's socket, whatever carries it: a uWS WebSocket (ws/) fits as
// it is, a TCP or TLS socket through tcp/tcp-client-socket.ts. Frames are RFC 7395 frames
// (one complete element each, `<open/>` and `<close/>` for the stream's ends); a transport
// with other framing translates them as it writes.
export interface ClientSocket {
  /** Writes one frame; returns a SEND_STATUS (ws/outbound.ts). */
  send(frame: string, isBinary: false): number;
  /** Bytes written and not yet taken by the kernel. */
  getBufferedAmount(): number;
  /**
   * Ends the connection after what is buffered (a WebSocket close frame with `code` and
   * `reason`; TCP has neither). The transport's close handling runs from inside this call.
   */
  end(code: number, reason: string): void;
  /** Runs `callback`, writing what it sends in as few packets as the transport can. */
  cork(callback: () => void): void;
}
