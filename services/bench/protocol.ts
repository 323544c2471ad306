// What the bench's coordinator and its worker processes tell each other (over the IPC channel).
import type { HistogramSnapshot } from "./histogram.js";
import type { ClientMechanism } from "../client/sasl-client.js";
import type { LoginMode } from "../client/ws-xmpp-client.js";

export interface WorkerTask {
  urls: string[];
  domain: string;
  /** Bare JID of user number n: the pattern with {n} replaced. */
  userPattern: string;
  firstUser: number;
  /** All users of the run (partners may live in other workers). */
  totalUsers: number;
  /** This worker's users: indexes [from, to) into the run's users. */
  from: number;
  to: number;
  password: string;
  mechanism: ClientMechanism;
  login: LoginMode;
  /** This worker's share of the login arrival rate, per second. */
  loginRate: number;
  presenceAndRoster: boolean;
  /** Answer the server's XEP-0199 pings (a client that does not is disconnected). */
  answerPings: boolean;
  /** Enable XEP-0198 after binding and answer ack requests (BenchOptions.streamManagement). */
  streamManagement: boolean;
  loginTimeoutMs: number;
  /** This worker's share of the bound on logins in flight; 0 for none (open loop; IPC is JSON, no Infinity). */
  maxLoginsInFlight: number;
  /** Each logged-in client sends a whitespace keepalive this often; 0 for none. */
  keepaliveMs: number;
  localAddresses: string[];
}

export interface ChatTask {
  /** This worker's share of the offered message rate, per second. */
  rate: number;
  durationMs: number;
  bodyBytes: number;
}

export interface PresenceTask {
  /** This worker's share of presence changes per second. */
  rate: number;
  durationMs: number;
  /** Each user's contacts: the users n±1 … n±ring/2 (megaphone user import --roster-ring). */
  ring: number;
}

export type ToWorker =
  /**
   * Before measuring, each user logs in once (SASL2, closed at once): --login fast, to get a
   * token (`requestToken`); --returning, so that the measured logins are returning clients'
   * with their SCRAM SaltedPassword cached (RFC 5802 §5.1).
   */
  | { type: "login-first"; task: WorkerTask; requestToken: boolean }
  | { type: "login"; task: WorkerTask }
  | { type: "chat"; task: ChatTask }
  | { type: "presence"; task: PresenceTask }
  /** Every worker has sent its share and the deliveries are in (or the drain timed out). */
  | { type: "chat-report" }
  /** The clients still connected, and those that were dropped after logging in. */
  | { type: "held" }
  | { type: "stop" };

export interface LoginResult {
  attempted: number;
  succeeded: number;
  errors: Record<string, number>;
  latency: HistogramSnapshot;
  elapsedMs: number;
  /** The most logins this worker had in flight at once. */
  mostInFlight: number;
}

/** A worker's logged-in clients: still connected, and dropped since (by how they ended). */
export interface HeldResult {
  held: number;
  dropped: Record<string, number>;
  /** XEP-0199 pings from the server the clients answered, over the whole run. */
  pingsAnswered: number;
}

/** The chat or presence phase of a worker. */
export interface ChatResult {
  sent: number;
  /** Deliveries the sends should make: one per message, one per contact per presence. */
  expected: number;
  received: number;
  duplicates: number;
  misrouted: number;
  /** Messages a client was not online to send (it had been disconnected). */
  notSent: number;
  errors: Record<string, number>;
  latency: HistogramSnapshot;
  elapsedMs: number;
  /** The most sends the generator fell behind its schedule by (open loop honesty check). */
  maxBehind: number;
  /** XEP-0198 ack requests (<r/>) the clients answered. */
  acksAnswered: number;
}

export type FromWorker =
  | {
      type: "progress";
      loggedIn: number;
      failed: number;
      /** Logged in and still connected. */
      held: number;
      inFlight: number;
      sent: number;
      received: number;
    }
  | { type: "login-first-done"; result: LoginResult }
  | { type: "login-done"; result: LoginResult }
  | { type: "chat-sent"; sent: number; expected: number }
  | { type: "chat-done"; result: ChatResult }
  | { type: "held"; result: HeldResult }
  | { type: "error"; message: string };

export function userJid(pattern: string, n: number): string {
  return pattern.replace("{n}", String(n));
}
