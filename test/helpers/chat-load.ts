// Steady 1:1 chat between real @xmpp/client users, with every message accounted for: each
// user sends numbered messages to its partner at a fixed interval; the receiver records each
// one. After stop(), report() waits (bounded) for the stragglers and says, per message, whether
// it arrived once, twice or never, whether any sender's messages arrived out of order, the
// longest delivery time (a pause of the mesh shows up here) and how many clients were
// disconnected. Bodies are "load <sender> <seq> <sentAtMs>".
import type { Element } from "ltx";
import { TestUser, xml } from "./xmpp-client.js";

export interface ChatLoadReport {
  sent: number;
  delivered: number;
  duplicates: number;
  missing: number;
  outOfOrder: number;
  outOfOrderSample: string[];
  disconnected: number;
  /** Longest send → receive time, ms. */
  maxLatencyMs: number;
  /** When (ms since start) the longest delivery was sent. */
  maxLatencyAtMs: number;
  /** Up to 20 of the missing messages, as "<sender> <seq>". */
  missingSample: string[];
}

interface Sender {
  user: TestUser;
  to: string;
  seq: number;
}

export class ChatLoad {
  private readonly senders: Sender[] = [];
  /** "<sender> <seq>" → times received. */
  private readonly received = new Map<string, number>();
  /** Per sender: the last seq received (order check). */
  private readonly lastSeq = new Map<string, number>();
  private outOfOrder = 0;
  /** The first few out-of-order arrivals: "<sender> <seq> after <last> at <receiver> <ms>". */
  private readonly outOfOrderSample: string[] = [];
  private maxLatencyMs = 0;
  private maxLatencyAtMs = 0;
  private disconnected = 0;
  private timer: NodeJS.Timeout | undefined;
  private sendFailures: unknown[] = [];
  private readonly startedAt = Date.now();

  /** `pairs`: [a, b] users chatting both ways. */
  constructor(pairs: [TestUser, TestUser][]) {
    for (const [a, b] of pairs) {
      this.senders.push({ user: a, to: b.jid, seq: 0 }, { user: b, to: a.jid, seq: 0 });
      for (const user of [a, b]) {
        user.xmpp.on("stanza", (el: Element) => this.onStanza(el));
        user.xmpp.on("disconnect", () => this.disconnected++);
      }
    }
  }

  /** Every sender sends one message every `intervalMs` until stop(). */
  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      for (const sender of this.senders) {
        // A client between connections (resuming elsewhere) sends nothing meanwhile.
        if (sender.user.xmpp.status !== "online") continue;
        const seq = ++sender.seq;
        const body = `load ${sender.user.jid} ${seq} ${Date.now()}`;
        sender.user
          .send(xml("message", { to: sender.to, type: "chat" }, xml("body", {}, body)))
          .catch((err: unknown) => this.sendFailures.push(err));
      }
    }, intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  get sent(): number {
    return this.senders.reduce((n, s) => n + s.seq, 0);
  }

  /** Waits until every message sent arrived (or `timeoutMs` passed), then counts. */
  async report(timeoutMs = 15000): Promise<ChatLoadReport> {
    this.stop();
    const deadline = Date.now() + timeoutMs;
    while (this.received.size < this.sent && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    let duplicates = 0;
    for (const times of this.received.values()) duplicates += times - 1;
    if (this.sendFailures.length > 0)
      throw new Error(`${this.sendFailures.length} sends failed: ${String(this.sendFailures[0])}`);
    const missingSample: string[] = [];
    for (const sender of this.senders)
      for (let seq = 1; seq <= sender.seq && missingSample.length < 20; seq++)
        if (!this.received.has(`${sender.user.jid} ${seq}`))
          missingSample.push(`${sender.user.jid} ${seq}`);
    return {
      sent: this.sent,
      missingSample,
      delivered: this.received.size,
      duplicates,
      missing: this.sent - this.received.size,
      outOfOrder: this.outOfOrder,
      outOfOrderSample: this.outOfOrderSample,
      disconnected: this.disconnected,
      maxLatencyMs: this.maxLatencyMs,
      maxLatencyAtMs: this.maxLatencyAtMs,
    };
  }

  private onStanza(el: Element): void {
    if (!el.is("message")) return;
    const parts = el.getChildText("body")?.split(" ");
    if (!parts || parts[0] !== "load") return;
    const [, sender, seqText, sentAtText] = parts;
    const key = `${sender} ${seqText}`;
    const times = (this.received.get(key) ?? 0) + 1;
    this.received.set(key, times);
    if (times > 1) return; // a duplicate, counted as such
    const seq = Number(seqText);
    const last = this.lastSeq.get(sender) ?? 0;
    if (seq <= last) {
      this.outOfOrder++;
      if (this.outOfOrderSample.length < 10)
        this.outOfOrderSample.push(
          `${sender} ${seq} after ${last} (${Date.now() - this.startedAt} ms into the load)`,
        );
    } else this.lastSeq.set(sender, seq);
    const latency = Date.now() - Number(sentAtText);
    if (latency > this.maxLatencyMs) {
      this.maxLatencyMs = latency;
      this.maxLatencyAtMs = Number(sentAtText) - this.startedAt;
    }
  }
}

/** One line for the test log. */
export function formatReport(label: string, r: ChatLoadReport): string {
  return (
    `${label}: sent ${r.sent}, delivered ${r.delivered}, ` +
    `duplicates ${r.duplicates}, missing ${r.missing}, out of order ${r.outOfOrder}, ` +
    `disconnected ${r.disconnected}, longest delivery ${r.maxLatencyMs} ms ` +
    `(sent ${r.maxLatencyAtMs} ms into the load)` +
    (r.missingSample.length > 0 ? `; missing e.g. ${r.missingSample.join(", ")}` : "") +
    (r.outOfOrderSample.length > 0 ? `; out of order: ${r.outOfOrderSample.join("; ")}` : "")
  );
}
