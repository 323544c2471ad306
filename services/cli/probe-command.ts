// `megaphone probe login`: logs a user in through a running deployment and exits 0 when the
// whole login worked (WebSocket, SCRAM-SHA-256, bind, presence back), 1 when it did not. The
// chart's `helm test` pod runs it. With --throwaway-user it creates a random account in the
// configured Redis first and deletes it afterwards, so it needs no account of anyone's.
import { randomBytes } from "node:crypto";
import type { Config } from "../shared/config.js";
import { ConfigError } from "../shared/config-parse.js";
import { silentLogger } from "../shared/log.js";
import { createBackend } from "../shared/wiring.js";
import { AdminContext } from "../session/admin/admin-context.js";
import { deleteAccount } from "../session/admin/delete-account.js";
import { createAccount } from "../session/core/sasl/sasl-credentials.js";
import { LoginError, WsXmppClient } from "../client/ws-xmpp-client.js";

export const PROBE_USAGE =
  "megaphone probe login --url ws://HOST:PORT/xmpp-websocket (--jid JID --password P | --throwaway-user) [--resource R] [--timeout-ms 20000]";

export interface ProbeArgs {
  url?: string;
  jid?: string;
  password?: string;
  resource: string;
  timeoutMs: number;
  throwawayUser: boolean;
}

const DEFAULT_TIMEOUT_MS = 20000;

/** Takes the probe's own flags out of `argv`; the rest are settings (--redis, --domain, …). */
export function splitProbeArgs(argv: string[]): { probe: ProbeArgs; rest: string[] } {
  const probe: ProbeArgs = {
    resource: "probe",
    timeoutMs: DEFAULT_TIMEOUT_MS,
    throwawayUser: false,
  };
  const rest: string[] = [];
  const valued: Record<string, (v: string) => void> = {
    "--url": (v) => (probe.url = v),
    "--jid": (v) => (probe.jid = v),
    "--password": (v) => (probe.password = v),
    "--resource": (v) => (probe.resource = v),
    "--timeout-ms": (v) => {
      if (!/^\d+$/.test(v) || Number(v) < 100)
        throw new ConfigError(
          `--timeout-ms: "${v}" is not a number of milliseconds (at least 100)`,
        );
      probe.timeoutMs = Number(v);
    },
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf("=");
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    if (flag === "--throwaway-user") probe.throwawayUser = true;
    else if (valued[flag]) {
      const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new ConfigError(`${flag} needs a value`);
      valued[flag](value);
    } else rest.push(arg);
  }
  return { probe, rest };
}

export async function runProbeCommand(
  config: Config,
  positional: string[],
  probe: ProbeArgs,
): Promise<number> {
  if (positional[0] !== "login" || positional.length > 1 || !probe.url)
    throw new ConfigError(`usage: ${PROBE_USAGE}`);
  if (probe.throwawayUser === (probe.jid !== undefined))
    throw new ConfigError("give either --jid and --password, or --throwaway-user");
  if (probe.jid !== undefined && probe.password === undefined)
    throw new ConfigError("--jid needs --password");
  if (probe.throwawayUser && !config.redis)
    throw new ConfigError(
      "--throwaway-user creates its account in Redis: it needs --redis / MEGAPHONE_REDIS",
    );

  const jid = probe.jid ?? `megaphone-probe-${randomBytes(6).toString("hex")}@${config.domain}`;
  const password = probe.password ?? randomBytes(24).toString("base64url");
  const backend = probe.throwawayUser ? createBackend(config, silentLogger) : undefined;
  try {
    if (backend) {
      await backend.accounts.create(jid, createAccount(password, config.scramIterations));
      console.log(`created throwaway account ${jid}`);
    }
    try {
      const fullJid = await loginAndSeePresence(probe, jid, password);
      console.log(`login OK: ${fullJid} through ${probe.url}`);
      return 0;
    } catch (err) {
      const step = err instanceof LoginError ? err.kind : "probe";
      console.error(`login FAILED at ${step}: ${(err as Error).message}`);
      return 1;
    }
  } finally {
    if (backend) {
      // Deleted whatever happened above, through the same path as `megaphone user del`.
      const ctx = new AdminContext({
        config,
        log: silentLogger,
        stores: backend,
        bus: backend.bus,
      });
      const result = await deleteAccount(ctx, jid);
      console.log(
        result.existed ? `deleted throwaway account ${jid}` : `no account ${jid} to delete`,
      );
      await backend.close();
    }
  }
}

/**
 * Logs in as a client does (SCRAM-SHA-256, bind, initial presence, roster) and waits for the
 * initial presence to come back from the session (RFC 6121 §4.2.2): the whole path through the
 * edge, Redis and a session works. Returns the bound full JID.
 */
async function loginAndSeePresence(probe: ProbeArgs, jid: string, password: string) {
  const at = jid.indexOf("@");
  if (at <= 0) throw new ConfigError(`--jid "${jid}" is not a bare JID user@domain`);
  const client = new WsXmppClient({
    url: probe.url as string,
    domain: jid.slice(at + 1),
    username: jid.slice(0, at),
    password,
    mechanism: "SCRAM-SHA-256",
    resource: probe.resource,
    presenceAndRoster: true,
    timeoutMs: probe.timeoutMs,
    onStep: (step) => console.log(step),
  });
  const deadline = Date.now() + probe.timeoutMs;
  let echoed: () => void = () => undefined;
  const presenceBack = new Promise<void>((resolve) => (echoed = resolve));
  client.onPresence = (frame) => {
    const from = /^<presence\b[^>]*\bfrom=["']([^"']+)["']/.exec(frame)?.[1];
    if (from !== undefined && from === client.jid) echoed();
  };
  try {
    await client.login();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new LoginError("presence", "the initial presence did not come back")),
        Math.max(0, deadline - Date.now()),
      );
    });
    await Promise.race([presenceBack, late]).finally(() => clearTimeout(timer));
    console.log("initial presence sent and received back");
    return client.jid;
  } finally {
    client.close();
  }
}
