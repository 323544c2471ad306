// `megaphone user add|del|passwd JID`: account administration against the configured Redis.
import { createInterface } from "node:readline";
import { ConfigError, type Config } from "../shared/config.js";
import { parseJid } from "../shared/jid.js";
import { silentLogger } from "../shared/log.js";
import { createBackend } from "../shared/wiring.js";
import { createAccount } from "../session/core/sasl-credentials.js";

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
      const deleted = await backend.accounts.delete(bare);
      if (deleted) {
        await backend.rosters.deleteUser(bare);
        await backend.offline.deleteUser(bare);
      }
      console.log(deleted ? `deleted ${bare}` : `no such user ${bare}`);
      return deleted ? 0 : 1;
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
