// A bench worker process: holds its share of the run's clients (one process opens at most
// ~20,000 sockets here), logs them in at its share of the arrival rate, and drives the chat
// phase open-loop. Started by the coordinator (bench-command.ts) with child_process.fork.
import { BenchClient, LoginError } from "./bench-client.js";
import { LatencyHistogram, monotonicMicros } from "./histogram.js";
import type {
  ChatResult,
  ChatTask,
  FromWorker,
  LoginResult,
  ToWorker,
  WorkerTask,
} from "./protocol.js";
import { userJid } from "./protocol.js";

const PROGRESS_MS = 250;
/** How often the open-loop scheduler wakes up to send what is due. */
const TICK_MS = 5;

const saltedCache = new Map<string, Buffer>();

function send(message: FromWorker): void {
  process.send?.(message);
}

function count(errors: Record<string, number>, kind: string): void {
  errors[kind] = (errors[kind] ?? 0) + 1;
}

/** A client of this worker, with its place in the run and its chat bookkeeping. */
interface Seat {
  index: number;
  client: BenchClient | undefined;
  /** Sequence numbers received from the one user that writes to this one. */
  seen: Set<number>;
  nextSeq: number;
}

class Worker {
  private seats: Seat[] = [];
  private loggedIn = 0;
  private failed = 0;
  private sent = 0;
  private received = 0;
  private duplicates = 0;
  private misrouted = 0;
  private chatLatency = new LatencyHistogram();
  private task!: WorkerTask;
  private progress: NodeJS.Timeout | undefined;

  async login(task: WorkerTask): Promise<LoginResult> {
    this.task = task;
    this.progress = setInterval(() => this.reportProgress(), PROGRESS_MS);
    const latency = new LatencyHistogram();
    const errors: Record<string, number> = {};
    const users = task.to - task.from;
    const started = monotonicMicros();
    const logins: Promise<void>[] = [];
    // Open loop: user i starts at i / rate seconds, however long the earlier ones take.
    for (let i = 0; i < users; i++) {
      const due = started + (i / task.loginRate) * 1e6;
      const wait = (due - monotonicMicros()) / 1000;
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      logins.push(this.loginOne(task.from + i, latency, errors));
    }
    await Promise.all(logins);
    return {
      attempted: users,
      succeeded: this.loggedIn,
      errors,
      latency: latency.snapshot(),
      elapsedMs: (monotonicMicros() - started) / 1000,
    };
  }

  private async loginOne(index: number, latency: LatencyHistogram, errors: Record<string, number>) {
    const t = this.task;
    const seat: Seat = { index, client: undefined, seen: new Set(), nextSeq: 0 };
    this.seats.push(seat);
    const jid = userJid(t.userPattern, t.firstUser + index);
    const client = new BenchClient({
      url: t.urls[index % t.urls.length],
      domain: t.domain,
      username: jid.slice(0, jid.indexOf("@")),
      password: t.password,
      mechanism: t.mechanism,
      resource: "bench",
      localAddress: t.localAddresses.length
        ? t.localAddresses[index % t.localAddresses.length]
        : undefined,
      presenceAndRoster: t.presenceAndRoster,
      timeoutMs: t.loginTimeoutMs,
      saltedCache,
    });
    client.onMessage = (frame) => this.onMessage(seat, frame);
    const start = monotonicMicros();
    try {
      await client.login();
      latency.recordMicros(monotonicMicros() - start);
      seat.client = client;
      this.loggedIn++;
    } catch (err) {
      this.failed++;
      count(errors, err instanceof LoginError ? err.kind : "other");
      client.terminate();
    }
  }

  async chat(
    task: ChatTask,
  ): Promise<Omit<ChatResult, "received" | "duplicates" | "misrouted" | "latency">> {
    const total = this.task.totalUsers;
    const errors: Record<string, number> = {};
    const padding = "x".repeat(Math.max(0, task.bodyBytes - 40));
    const started = monotonicMicros();
    const endAt = started + task.durationMs * 1000;
    let notSent = 0;
    let maxBehind = 0;
    let next = 0;
    for (;;) {
      const now = monotonicMicros();
      const due = Math.floor(((Math.min(now, endAt) - started) / 1e6) * task.rate);
      maxBehind = Math.max(maxBehind, due - this.sent - notSent);
      while (this.sent + notSent < due) {
        const seat = this.seats[next++ % this.seats.length];
        const client = seat.client;
        if (!client || client.closed) {
          notSent++;
          continue;
        }
        const to = userJid(this.task.userPattern, this.task.firstUser + ((seat.index + 1) % total));
        const seq = seat.nextSeq++;
        client.send(
          `<message xmlns='jabber:client' to='${to}' type='chat' id='b${seq}'><body>${monotonicMicros()} ${seat.index} ${seq} ${padding}</body></message>`,
        );
        this.sent++;
      }
      if (now >= endAt) break;
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
    for (const seat of this.seats) if (seat.client?.closed) count(errors, "disconnected");
    return {
      sent: this.sent,
      notSent,
      errors,
      elapsedMs: (monotonicMicros() - started) / 1000,
      maxBehind,
    };
  }

  chatCounts(): Pick<ChatResult, "received" | "duplicates" | "misrouted" | "latency"> {
    return {
      received: this.received,
      duplicates: this.duplicates,
      misrouted: this.misrouted,
      latency: this.chatLatency.snapshot(),
    };
  }

  stop(): void {
    if (this.progress) clearInterval(this.progress);
    for (const seat of this.seats) seat.client?.terminate();
  }

  private onMessage(seat: Seat, frame: string): void {
    const body = /<body>(\d+) (\d+) (\d+)/.exec(frame);
    if (!body) return; // not one of ours (e.g. an error bounce is counted by the sender side)
    const total = this.task.totalUsers;
    if (Number(body[2]) !== (seat.index - 1 + total) % total) {
      this.misrouted++;
      return;
    }
    const seq = Number(body[3]);
    if (seat.seen.has(seq)) {
      this.duplicates++;
      return;
    }
    seat.seen.add(seq);
    this.received++;
    this.chatLatency.recordMicros(monotonicMicros() - Number(body[1]));
  }

  private reportProgress(): void {
    send({
      type: "progress",
      loggedIn: this.loggedIn,
      failed: this.failed,
      sent: this.sent,
      received: this.received,
    });
  }
}

const worker = new Worker();
let chatPart: Awaited<ReturnType<Worker["chat"]>> | undefined;

process.on("message", (message: ToWorker) => {
  const run = async () => {
    switch (message.type) {
      case "login":
        send({ type: "login-done", result: await worker.login(message.task) });
        break;
      case "chat":
        chatPart = await worker.chat(message.task);
        send({ type: "chat-sent", sent: chatPart.sent });
        break;
      case "chat-report":
        if (!chatPart) throw new Error("chat-report before chat");
        send({ type: "chat-done", result: { ...chatPart, ...worker.chatCounts() } });
        break;
      case "stop":
        worker.stop();
        process.disconnect?.();
        break;
    }
  };
  run().catch((err: unknown) => send({ type: "error", message: String(err) }));
});
// The coordinator is gone: nothing left to do.
process.on("disconnect", () => {
  worker.stop();
  setTimeout(() => process.exit(0), 100).unref();
});
