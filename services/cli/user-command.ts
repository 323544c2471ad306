// `megaphone user add|del|passwd JID`: account administration against the configured Redis.
import { createInterface } from "node:readline";
import { type Config } from "../shared/config.js";
import { ConfigError } from "../shared/config-parse.js";
import { parseJid } from "../shared/jid.js";
import { silentLogger } from "../shared/log.js";
import { createBackend } from "../shared/wiring.js";
import { AdminContext } from "../session/admin/admin-context.js";
import { deleteAccount } from "../session/admin/delete-account.js";
import { createAccount } from "../session/core/sasl/sasl-credentials.js";

async function readPassword(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write("password: ");
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    lines.close();
    return line;
  }
  return "";
}

export async function runUserCommand(
  config: Config,
  positional: string[],
  password: string | undefined,
): Promise<number> {
  const [action, jidText] = positional;
  if (!["add", "del", "passwd"].includes(action ?? "") || !jidText)
    throw new ConfigError("usage: megaphone user add|del|passwd JID [--password P]");
  if (!config.redis) throw new ConfigError("megaphone user needs --redis / MEGAPHONE_REDIS");
  let jid;
  try {
    jid = parseJid(jidText);
  } catch {
    throw new ConfigError(`"${jidText}" is not a valid JID`);
  }
  if (!jid.local || jid.resource)
    throw new ConfigError(`"${jidText}" must be a bare JID user@domain`);
  const bare = jid.bareString();
  const backend = createBackend(config, silentLogger);
  try {
    if (action === "del") {
      // Complete deletion: live connections, contacts' rosters and subscriptions too.
      const ctx = new AdminContext({
        config,
        log: silentLogger,
        stores: backend,
        bus: backend.bus,
      });
      const result = await deleteAccount(ctx, bare);
      if (!result.existed) {
        console.log(`no such user ${bare}`);
        return 1;
      }
      console.log(
        `deleted ${bare} (${result.kicked} connection(s) ended, ${result.contacts} contact(s) told)`,
      );
      if (result.unboundHere > 0)
        console.log(
          `${result.unboundHere} connection(s) were not ended by their session within ${config.accountDeleteWaitMs} ms; their routes were removed, and their session ends them when it reads the kick`,
        );
      return 0;
    }
    const secret = password ?? (await readPassword());
    if (secret.length === 0) throw new ConfigError("the password must not be empty");
    const account = createAccount(secret, config.scramIterations);
    const done =
      action === "add"
        ? await backend.accounts.create(bare, account)
        : await backend.accounts.update(bare, account);
    console.log(
      done
        ? `${action === "add" ? "created" : "changed password of"} ${bare}`
        : action === "add"
          ? `${bare} exists already`
          : `no such user ${bare}`,
    );
    return done ? 0 : 1;
  } finally {
    await backend.close();
  }
}
