// A TCP (or TLS) client socket as the edge's ClientSocket (client-socket.ts): frames are
// written as the bytes of an RFC 6120 stream (stream-framing.ts), the write buffer is bounded
// like uWS's maxBackpressure, reading pauses while the client does not take what is written
// (STYLE §2.11), and end() runs the close handling at once, as uWS's end() does, then lets
// the socket flush and close.
import type net from "node:net";
import type { ClientSocket } from "../client-socket.js";
import { SEND_STATUS } from "../ws/outbound.js";
import { frameToStream } from "./stream-framing.js";

export interface TcpSocketLimits {
  /**
   * Buffered bytes past which a frame is refused (DROPPED), like uWS's maxBackpressure: the
   * edge ends such a client as a slow consumer well before (outbound.ts).
   */
  maxBufferedBytes: number;
  /** Buffered bytes past which the edge stops reading the client until its buffer drains. */
  pauseReadingBytes: number;
}

/**
 * How long an ended socket may take to flush its last frames and see the client close, before
 * it is destroyed: a client that stops reading cannot hold its socket open.
 */
export const END_LINGER_MS = 5000;

export class TcpClientSocket implements ClientSocket {
  private ended = false;
  private readPaused = false;
  private readonly resumeReading = () => {
    if (!this.readPaused) return;
    this.readPaused = false;
    if (!this.ended) this.socket.resume();
  };

  constructor(
    private socket: net.Socket,
    private readonly limits: TcpSocketLimits,
    /** The connection's close handling; runs once, from end() or when the socket closes. */
    private readonly onEnd: () => void,
  ) {
    socket.on("drain", this.resumeReading);
  }

  /** The socket now carries TLS on top of the one it had (STARTTLS). */
  replace(socket: net.Socket): void {
    this.socket.off("drain", this.resumeReading);
    this.socket = socket;
    socket.on("drain", this.resumeReading);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  send(frame: string): number {
    if (this.ended || this.socket.destroyed) return SEND_STATUS.DROPPED;
    const bytes = frameToStream(frame);
    if (this.socket.writableLength + Buffer.byteLength(bytes) > this.limits.maxBufferedBytes)
      return SEND_STATUS.DROPPED;
    this.socket.write(bytes);
    if (this.socket.writableLength <= this.limits.pauseReadingBytes) return SEND_STATUS.SUCCESS;
    if (!this.readPaused) {
      this.readPaused = true;
      this.socket.pause();
    }
    return SEND_STATUS.BACKPRESSURE;
  }

  getBufferedAmount(): number {
    return this.socket.writableLength;
  }

  cork(callback: () => void): void {
    this.socket.cork();
    try {
      callback();
    } finally {
      this.socket.uncork();
    }
  }

  end(): void {
    if (this.ended) return;
    this.closed();
    const socket = this.socket;
    socket.end();
    const timer = setTimeout(() => socket.destroy(), END_LINGER_MS);
    timer.unref();
    socket.once("close", () => clearTimeout(timer));
  }

  /** The socket is gone (or going, from end()): the close handling runs, once. */
  closed(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
  }
}
