// A bench worker process: holds its share of the run's clients (one process opens at most
// ~20,000 sockets here), logs them in at its share of the arrival rate, and drives the chat
// phase open-loop. Started by the coordinator (bench-command.ts) with child_process.fork.
import { WsXmppClient, LoginError, type LoginOptions } from "../client/ws-xmpp-client.js";
import { LatencyHistogram, monotonicMicros } from "./histogram.js";
import { KeepaliveSchedule } from "./keepalive-schedule.js";
import { rampLogins } from "./login-ramp.js";
import type {
  ChatResult,
  PresenceTask,
  ChatTask,
  FromWorker,
  HeldResult,
  LoginResult,
  ToWorker,
  WorkerTask,
} from "./protocol.js";
import { userJid } from "./protocol.js";
import { shuffled } from "./seat-order.js";

const PROGRESS_MS = 250;
/** How often the keepalive timer wakes up to send what is due (KeepaliveSchedule). */
const KEEPALIVE_TICK_MS = 1000;
/** How often the open-loop scheduler wakes up to send what is due. */
const TICK_MS = 5;

const saltedCache = new Map<string, Buffer>();
const BODY_MARK = /<body>(\d+) (\d+) (\d+)/;
const STATUS_MARK = /<status>(\d+) (\d+) (\d+)<\/status>/;

type SendPart = Omit<
  ChatResult,
  "received" | "duplicates" | "misrouted" | "latency" | "acksAnswered"
>;

function send(message: FromWorker): void {
  process.send?.(message);
}

function count(errors: Record<string, number>, kind: string): void {
  errors[kind] = (errors[kind] ?? 0) + 1;
}

/** A failed login's key in the errors table: SASL failures by their condition. */
function loginErrorKind(err: unknown): string {
  if (!(err instanceof LoginError)) return "other";
  return err.kind === "sasl" ? `sasl ${err.message}` : err.kind;
}

/** A client of this worker, with its place in the run and its chat bookkeeping. */
interface Seat {
  index: number;
  client: WsXmppClient | undefined;
  /** What this client received: sender × 1e9 + sequence number. */
  seen: Set<number>;
  nextSeq: number;
}

class Worker {
  private seats: Seat[] = [];
  private loggedIn = 0;
  private failed = 0;
  /** Logins started and not yet done. */
  private inFlight = 0;
  /** Logged in and still connected. */
  private held = 0;
  /** Clients that logged in and were disconnected since, by how (WsXmppClient.onClose). */
  private readonly dropped: Record<string, number> = {};
  private sent = 0;
  private received = 0;
  private duplicates = 0;
  private misrouted = 0;
  private latency = new LatencyHistogram();
  /** Whether a client may receive from `sender` in the current phase. */
  private accepts: (seat: Seat, sender: number) => boolean = () => false;
  /** Deliveries each send should make. */
  private fanOut = 1;
  private task!: WorkerTask;
  private progress: NodeJS.Timeout | undefined;
  private keepalives: NodeJS.Timeout | undefined;

  /** FAST tokens by user index (--login fast), from the unmeasured token phase. */
  private readonly tokens = new Map<number, string>();

  async login(task: WorkerTask): Promise<LoginResult> {
    this.task = task;
    this.progress = setInterval(() => this.reportProgress(), PROGRESS_MS);
    if (task.keepaliveMs > 0) this.startKeepalives(task.keepaliveMs);
    return this.rampLogins(task, (index, latency, errors) => this.loginOne(index, latency, errors));
  }

  /** Whitespace keepalives for the logged-in clients, spread over the interval. */
  private startKeepalives(intervalMs: number): void {
    const schedule = new KeepaliveSchedule(intervalMs, Date.now());
    this.keepalives = setInterval(() => {
      for (const i of schedule.due(this.seats.length, Date.now()))
        this.seats[i].client?.keepalive();
    }, KEEPALIVE_TICK_MS);
  }

  /** The clients still connected, and those dropped after logging in. */
  heldClients(): HeldResult {
    let pingsAnswered = 0;
    for (const seat of this.seats) pingsAnswered += seat.client?.pingsAnswered ?? 0;
    return { held: this.held, dropped: { ...this.dropped }, pingsAnswered };
  }

  /**
   * A SASL2 login per user, closed at once, before measuring: asking for a token (--login
   * fast), or not (--returning: the user's SCRAM key is then in saltedCache).
   */
  async loginFirst(task: WorkerTask, requestToken: boolean): Promise<LoginResult> {
    this.task = task;
    let got = 0;
    const result = await this.rampLogins(task, async (index, latency, errors) => {
      const client = this.client(index, { login: "sasl2", requestToken }, false);
      const start = monotonicMicros();
      try {
        await client.login();
        latency.recordMicros(monotonicMicros() - start);
        if (!requestToken) got++;
        else if (client.fastToken) {
          this.tokens.set(index, client.fastToken);
          got++;
        } else count(errors, "no-token");
      } catch (err) {
        count(errors, loginErrorKind(err));
      } finally {
        client.close();
      }
    });
    return { ...result, succeeded: got };
  }

  /** User i starts at i / rate seconds, or later when the task bounds the logins in flight. */
  private async rampLogins(
    task: WorkerTask,
    one: (
      index: number,
      latency: LatencyHistogram,
      errors: Record<string, number>,
    ) => Promise<void>,
  ): Promise<LoginResult> {
    const latency = new LatencyHistogram();
    const errors: Record<string, number> = {};
    const users = task.to - task.from;
    const { elapsedMs, mostInFlight } = await rampLogins(
      {
        count: users,
        ratePerSecond: task.loginRate,
        maxInFlight: task.maxLoginsInFlight || Infinity,
      },
      async (i) => {
        this.inFlight++;
        try {
          await one(task.from + i, latency, errors);
        } finally {
          this.inFlight--;
        }
      },
    );
    return {
      attempted: users,
      succeeded: this.loggedIn,
      errors,
      latency: latency.snapshot(),
      elapsedMs,
      mostInFlight,
    };
  }

  /** The client of user `index`, logging in as the task says unless `login` overrides it. */
  private client(
    index: number,
    login: Pick<LoginOptions, "login" | "requestToken">,
    presenceAndRoster = this.task.presenceAndRoster,
  ): WsXmppClient {
    const t = this.task;
    const jid = userJid(t.userPattern, t.firstUser + index);
    const username = jid.slice(0, jid.indexOf("@"));
    return new WsXmppClient({
      url: t.urls[index % t.urls.length],
      domain: t.domain,
      username,
      password: t.password,
      mechanism: t.mechanism,
      resource: "bench",
      // Counted per endpoint, so that every endpoint sees every address: index % both would
      // give each edge only addresses ≡ its number (mod the endpoints), and with them its
      // per-address connection bound (maxConnectionsPerAddress) far sooner.
      localAddress: t.localAddresses.length
        ? t.localAddresses[Math.floor(index / t.urls.length) % t.localAddresses.length]
        : undefined,
      presenceAndRoster,
      timeoutMs: t.loginTimeoutMs,
      saltedCache,
      // One client installation per user: its FAST tokens and its Bind 2 resource.
      userAgentId: `bench-${username}`,
      fastToken: this.tokens.get(index),
      answerPings: t.answerPings,
      streamManagement: t.streamManagement,
      ...login,
    });
  }

  private async loginOne(index: number, latency: LatencyHistogram, errors: Record<string, number>) {
    const seat: Seat = { index, client: undefined, seen: new Set(), nextSeq: 0 };
    this.seats.push(seat);
    const client = this.client(index, { login: this.task.login });
    client.onMessage = (frame) => this.receive(seat, frame, BODY_MARK);
    client.onPresence = (frame) => this.receive(seat, frame, STATUS_MARK);
    const start = monotonicMicros();
    try {
      await client.login();
      latency.recordMicros(monotonicMicros() - start);
      seat.client = client;
      this.loggedIn++;
      this.held++;
      const dropped = (kind: string) => {
        this.held--;
        count(this.dropped, kind);
      };
      if (client.closed) dropped("closed");
      else client.onClose = dropped;
    } catch (err) {
      this.failed++;
      count(errors, loginErrorKind(err));
      client.terminate();
    }
  }

  /** Chat: each user writes to the next one (n → n+1) at the worker's share of the rate. */
  chat(task: ChatTask): Promise<SendPart> {
    const total = this.task.totalUsers;
    const padding = "x".repeat(Math.max(0, task.bodyBytes - 40));
    this.accepts = (seat, sender) => sender === (seat.index - 1 + total) % total;
    this.fanOut = 1;
    return this.sendOpenLoop(task, (seat, seq) => {
      const to = userJid(this.task.userPattern, this.task.firstUser + ((seat.index + 1) % total));
      return `<message xmlns='jabber:client' to='${to}' type='chat' id='b${seq}'><body>${monotonicMicros()} ${seat.index} ${seq} ${padding}</body></message>`;
    });
  }

  /** Presence: users change their status; each change reaches their `ring` contacts. */
  presence(task: PresenceTask): Promise<SendPart> {
    const total = this.task.totalUsers;
    const half = task.ring / 2;
    this.accepts = (seat, sender) => {
      const distance = Math.abs(seat.index - sender);
      return Math.min(distance, total - distance) <= half;
    };
    this.fanOut = task.ring;
    return this.sendOpenLoop(
      task,
      (seat, seq) =>
        `<presence xmlns='jabber:client'><status>${monotonicMicros()} ${seat.index} ${seq}</status></presence>`,
    );
  }

  /**
   * Open loop: by time t, rate × t sends are due, however the earlier ones fared; each goes to
   * the next client round robin, in a shuffled order of the clients. In their own order, the
   * clients that send in one tick (n, n+1, n+2…) would be each other's recipients (n → n+1):
   * every message would reach its recipient while the recipient's own message was being
   * handled, a lockstep no real population of users keeps.
   */
  private async sendOpenLoop(
    task: { rate: number; durationMs: number },
    frame: (seat: Seat, seq: number) => string,
  ): Promise<SendPart> {
    const errors: Record<string, number> = {};
    const started = monotonicMicros();
    const endAt = started + task.durationMs * 1000;
    let notSent = 0;
    let maxBehind = 0;
    let next = 0;
    const order = shuffled(this.seats);
    for (;;) {
      const now = monotonicMicros();
      const due = Math.floor(((Math.min(now, endAt) - started) / 1e6) * task.rate);
      maxBehind = Math.max(maxBehind, due - this.sent - notSent);
      while (this.sent + notSent < due) {
        const seat = order[next++ % order.length];
        const client = seat.client;
        if (!client || client.closed) {
          notSent++;
          continue;
        }
        client.send(frame(seat, seat.nextSeq++));
        this.sent++;
      }
      if (now >= endAt) break;
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
    for (const seat of this.seats) if (seat.client?.closed) count(errors, "disconnected");
    return {
      sent: this.sent,
      expected: this.sent * this.fanOut,
      notSent,
      errors,
      elapsedMs: (monotonicMicros() - started) / 1000,
      maxBehind,
    };
  }

  receivedCounts(): Pick<
    ChatResult,
    "received" | "duplicates" | "misrouted" | "latency" | "acksAnswered"
  > {
    let acksAnswered = 0;
    for (const seat of this.seats) acksAnswered += seat.client?.acksAnswered ?? 0;
    return {
      received: this.received,
      duplicates: this.duplicates,
      misrouted: this.misrouted,
      latency: this.latency.snapshot(),
      acksAnswered,
    };
  }

  stop(): void {
    if (this.progress) clearInterval(this.progress);
    if (this.keepalives) clearInterval(this.keepalives);
    // XEP-0198 clients end their streams: a dropped socket would leave each session waiting to
    // be resumed with its unacknowledged stanzas, handled as undeliverable once the same user
    // logs in again (the next rate of bench:load-curve) or the wait ends.
    for (const seat of this.seats)
      if (this.task.streamManagement) seat.client?.close();
      else seat.client?.terminate();
  }

  /** Chat bodies and presence statuses carry "sent-at sender seq". */
  private receive(seat: Seat, frame: string, pattern: RegExp): void {
    const mark = pattern.exec(frame);
    if (!mark) return; // not one of ours (a login's initial presence, say)
    const sender = Number(mark[2]);
    if (sender === seat.index) return; // a user's own presence, sent back to it (RFC 6121 §4.4.2)
    if (!this.accepts(seat, sender)) {
      this.misrouted++;
      return;
    }
    const key = sender * 1e9 + Number(mark[3]);
    if (seat.seen.has(key)) {
      this.duplicates++;
      return;
    }
    seat.seen.add(key);
    this.received++;
    this.latency.recordMicros(monotonicMicros() - Number(mark[1]));
  }

  private reportProgress(): void {
    send({
      type: "progress",
      loggedIn: this.loggedIn,
      failed: this.failed,
      held: this.held,
      inFlight: this.inFlight,
      sent: this.sent,
      received: this.received,
    });
  }
}

const worker = new Worker();
let sendPart: SendPart | undefined;

process.on("message", (message: ToWorker) => {
  const run = async () => {
    switch (message.type) {
      case "login-first":
        send({
          type: "login-first-done",
          result: await worker.loginFirst(message.task, message.requestToken),
        });
        break;
      case "login":
        send({ type: "login-done", result: await worker.login(message.task) });
        break;
      case "chat":
        sendPart = await worker.chat(message.task);
        send({ type: "chat-sent", sent: sendPart.sent, expected: sendPart.expected });
        break;
      case "presence":
        sendPart = await worker.presence(message.task);
        send({ type: "chat-sent", sent: sendPart.sent, expected: sendPart.expected });
        break;
      case "chat-report":
        if (!sendPart) throw new Error("chat-report before chat");
        send({ type: "chat-done", result: { ...sendPart, ...worker.receivedCounts() } });
        break;
      case "held":
        send({ type: "held", result: worker.heldClients() });
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
