// `megaphone bench SCENARIO [options]`: the options, their defaults and their checks.
import type { ClientMechanism } from "../client/sasl-client.js";
import type { LoginMode } from "../client/ws-xmpp-client.js";

export type Scenario = "login" | "chat" | "presence" | "idle";

export interface BenchOptions {
  scenario: Scenario;
  urls: string[];
  domain: string;
  userPattern: string;
  firstUser: number;
  users: number;
  password: string;
  mechanism: ClientMechanism;
  /**
   * rfc6120 (SASL, restart, bind), sasl2 (SASL2 + Bind 2) or fast (SASL2 with a FAST token,
   * which each user gets in an unmeasured SASL2 login first).
   */
  login: LoginMode;
  loginRate: number;
  /** Logins in flight at most, all workers together; 0 for open loop (no bound). */
  loginsInFlight: number;
  /** Each logged-in client sends a whitespace keepalive this often; 0 for none. */
  keepaliveMs: number;
  presenceAndRoster: boolean;
  /** Clients answer the server's XEP-0199 pings (--no-ping-answers: they ignore them). */
  answerPings: boolean;
  /**
   * --sm: clients enable XEP-0198 stream management (with resumption) after binding and answer
   * the server's ack requests, as most real clients do; the server then keeps every stanza it
   * sends them until acknowledged.
   */
  streamManagement: boolean;
  /** Chat: offered messages per second; presence: status changes per second; all users together. */
  rate: number;
  /** Presence: each user's contacts are n±1 … n±rosterRing/2 (user import --roster-ring). */
  rosterRing: number;
  durationMs: number;
  bodyBytes: number;
  drainMs: number;
  holdMs: number;
  /**
   * Idle: how long after the --hold sample to sample memory again. What a process keeps after
   * a login burst includes the burst's garbage and its grown heap spaces until V8's memory
   * reducer gives them back, a few tens of seconds after it goes quiet; the later sample is
   * what the held sessions themselves cost. 0: no second sample.
   */
  settleMs: number;
  /**
   * Every user logs in once before the measured logins (not measured), as a returning client:
   * a SCRAM client then has its SaltedPassword cached (RFC 5802 §5.1 allows it, and mobile
   * clients do), so the measured logins cost the load generator no key derivation and the
   * figure is the server's. Off: every login derives its key (4,096 PBKDF2 rounds here).
   */
  returning: boolean;
  loginTimeoutMs: number;
  workers: number;
  localAddresses: string[];
  /** PIDs to sample; discovered from /proc when empty. */
  pids: number[];
  json: string | undefined;
  /** The whole run stops by itself after this long. */
  deadlineMs: number;
}

export const BENCH_USAGE = `usage: megaphone bench login|chat|presence|idle [options]
  --url URL[,URL…]          edge WebSocket endpoint(s)  (ws://127.0.0.1:5280/xmpp-websocket)
  --domain D                XMPP domain (localhost)
  --users N                 clients (100)
  --user-pattern P          bare JID of user n ({n} is replaced; bench{n}@localhost)
  --first N                 number of the first user (1)
  --password P              every user's password (bench)
  --mechanism M             SCRAM-SHA-256 | PLAIN (SCRAM-SHA-256)
  --login L                 rfc6120 (SASL, restart, bind) | sasl2 (XEP-0388 + Bind 2, one
                            exchange) | fast (XEP-0484 token; each user first gets one in an
                            unmeasured sasl2 login) (rfc6120)
  --login-rate R            login arrivals per second, open loop (200)
  --logins-in-flight K      at most K logins in flight (all workers): a closed-loop ramp that
                            slows down under overload instead of timing out; 0 = open loop (0)
  --keepalive S             seconds between a logged-in client's whitespace keepalives (at
                            least 1 s apart), for an edge idle timeout shorter than the
                            server's ping interval (answered pings keep the default 300 s
                            idle timeout away); 0 = none (0)
  --no-roster               skip initial presence and the roster fetch at login
  --no-ping-answers         ignore the server's XEP-0199 pings (it then disconnects the client)
  --sm                      enable XEP-0198 stream management (with resumption) after binding
                            and answer the server's ack requests, as most real clients do
  --returning               every user logs in once first (not measured): the measured logins
                            are returning clients', SCRAM SaltedPassword cached (RFC 5802 §5.1)
  --rate R                  chat: offered messages per second, all users (1000);
                            presence: offered status changes per second
  --duration S              chat, presence: seconds of sending (10)
  --roster-ring K           presence: the users were imported with --roster-ring K (K contacts each)
  --body-bytes B            chat: message body size (64)
  --drain-ms MS             chat, presence: wait for deliveries after the last send (5000)
  --hold S                  idle: seconds to hold the sessions before sampling memory (5)
  --settle S                idle: seconds after that to sample memory again, once the
                            servers have given back the login burst's heap (0 = no)
  --workers W               worker processes (one per 15,000 users)
  --source-addresses A-B    local addresses to connect from, e.g. 127.0.0.1-127.0.0.8
  --pids P[,P…]             server PIDs to sample (default: discovered megaphone + redis processes)
  --json FILE               also write the report as JSON
  --deadline S              stop the whole run after S seconds (600)`;

function addressRange(spec: string): string[] {
  const [from, to] = spec.split("-");
  if (!to) return [from];
  const a = from.split(".").map(Number);
  const last = Number(to.includes(".") ? to.split(".").pop() : to);
  const out: string[] = [];
  for (let i = a[3]; i <= last && out.length < 256; i++) out.push(`${a[0]}.${a[1]}.${a[2]}.${i}`);
  return out;
}

/** Options that take no value. */
const FLAGS = new Set(["no-roster", "no-ping-answers", "returning", "sm"]);

export function parseBenchArgs(argv: string[]): BenchOptions {
  const [scenario, ...rest] = argv;
  if (scenario !== "login" && scenario !== "chat" && scenario !== "presence" && scenario !== "idle")
    throw new Error(`unknown scenario "${scenario ?? ""}"\n${BENCH_USAGE}`);
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (!arg.startsWith("--")) throw new Error(`unexpected argument "${arg}"\n${BENCH_USAGE}`);
    const [name, inline] = arg.slice(2).split("=", 2);
    if (FLAGS.has(name)) flags.add(name);
    else values.set(name, inline ?? rest[++i] ?? "");
  }
  const known = new Set([
    "url",
    "domain",
    "users",
    "user-pattern",
    "first",
    "password",
    "mechanism",
    "login",
    "login-rate",
    "logins-in-flight",
    "keepalive",
    "rate",
    "roster-ring",
    "duration",
    "body-bytes",
    "drain-ms",
    "hold",
    "settle",
    "workers",
    "source-addresses",
    "pids",
    "json",
    "deadline",
  ]);
  for (const name of values.keys())
    if (!known.has(name)) throw new Error(`unknown option --${name}\n${BENCH_USAGE}`);
  const number = (name: string, fallback: number, min = 0): number => {
    const raw = values.get(name);
    const value = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(value) || value < min)
      throw new Error(`--${name} must be a number ≥ ${min}`);
    return value;
  };
  const mechanism = values.get("mechanism") ?? "SCRAM-SHA-256";
  if (mechanism !== "PLAIN" && mechanism !== "SCRAM-SHA-256")
    throw new Error("--mechanism must be SCRAM-SHA-256 or PLAIN");
  const login = values.get("login") ?? "rfc6120";
  if (login !== "rfc6120" && login !== "sasl2" && login !== "fast")
    throw new Error("--login must be rfc6120, sasl2 or fast");
  const users = Math.floor(number("users", 100, 1));
  const userPattern = values.get("user-pattern") ?? "bench{n}@localhost";
  if (!userPattern.includes("{n}") || !userPattern.includes("@"))
    throw new Error("--user-pattern must be a bare JID containing {n}");
  return {
    scenario,
    urls: (values.get("url") ?? "ws://127.0.0.1:5280/xmpp-websocket").split(","),
    domain: values.get("domain") ?? userPattern.slice(userPattern.indexOf("@") + 1),
    userPattern,
    firstUser: Math.floor(number("first", 1)),
    users,
    password: values.get("password") ?? "bench",
    mechanism,
    login,
    loginRate: number("login-rate", 200, 0.1),
    loginsInFlight: Math.floor(number("logins-in-flight", 0)),
    keepaliveMs: number("keepalive", 0) * 1000,
    presenceAndRoster: !flags.has("no-roster"),
    answerPings: !flags.has("no-ping-answers"),
    streamManagement: flags.has("sm"),
    returning: flags.has("returning"),
    rate: number("rate", 1000, 0.1),
    rosterRing: rosterRingOf(scenario, values.get("roster-ring"), users),
    durationMs: number("duration", 10, 0.1) * 1000,
    bodyBytes: Math.floor(number("body-bytes", 64)),
    drainMs: number("drain-ms", 5000),
    holdMs: number("hold", 5) * 1000,
    settleMs: number("settle", 0) * 1000,
    loginTimeoutMs: 30000,
    workers: Math.floor(number("workers", Math.ceil(users / 15000), 1)),
    localAddresses: values.has("source-addresses")
      ? addressRange(values.get("source-addresses")!)
      : [],
    pids: values.has("pids") ? values.get("pids")!.split(",").map(Number) : [],
    json: values.get("json"),
    deadlineMs: number("deadline", 600, 1) * 1000,
  };
}

function rosterRingOf(scenario: Scenario, raw: string | undefined, users: number): number {
  if (scenario !== "presence") return 0;
  const ring = Number(raw);
  if (!(Number.isInteger(ring) && ring > 0 && ring % 2 === 0 && ring < users))
    throw new Error("presence needs --roster-ring K: the even K the users were imported with");
  return ring;
}
