// `megaphone user import`: many accounts at once, for migrations and benchmarks. Accounts come
// from a file (one "JID PASSWORD" per line, or "JID" with --password) or from a pattern
// (`--range 'bench{n}@localhost' --count 50000`). Creates run concurrently, so the client
// sends them in large batches (one write per event-loop turn) instead of one round trip each.
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { type Config } from "../shared/config.js";
import { ConfigError } from "../shared/config-parse.js";
import { parseJid } from "../shared/jid.js";
import { silentLogger } from "../shared/log.js";
import type { Account } from "../shared/stores/account/account-store.js";
import { createBackend } from "../shared/wiring.js";
import {
  createAccount,
  deriveCredential,
  SALT_BYTES,
} from "../session/core/sasl/sasl-credentials.js";

export interface ImportOptions {
  file?: string;
  range?: string;
  count: number;
  first: number;
  password?: string;
  /**
   * One salt (and so one key derivation) for every account of the import. Only for bench
   * accounts: accounts sharing a password then share their stored keys.
   */
  sharedSalt: boolean;
  /**
   * With --range: each user n gets the K users nearest on a ring (n±1 … n±K/2) as contacts
   * with subscription "both", so presence fans out to K contacts (the bench's presence load).
   */
  rosterRing: number;
}

const IN_FLIGHT = 512;

/** Takes the import's own flags out of `args`; the rest are settings (e.g. --redis). */
export function takeImportOptions(args: string[]): { options: ImportOptions; rest: string[] } {
  const options: ImportOptions = { count: 0, first: 1, sharedSalt: false, rosterRing: 0 };
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const [name, inline] = args[i].split("=", 2);
    const value = () => inline ?? args[++i];
    if (name === "--range") options.range = value();
    else if (name === "--count") options.count = Number(value());
    else if (name === "--first") options.first = Number(value());
    else if (name === "--shared-salt") options.sharedSalt = true;
    else if (name === "--roster-ring") options.rosterRing = Number(value());
    else if (name === "--file") options.file = value();
    else rest.push(args[i]);
  }
  return { options, rest };
}

function* accountsOf(options: ImportOptions): Generator<{ jid: string; password: string }> {
  if (options.range !== undefined) {
    if (!options.range.includes("{n}")) throw new ConfigError("--range must contain {n}");
    if (!(Number.isInteger(options.count) && options.count > 0))
      throw new ConfigError("--range needs --count N (a positive integer)");
    if (!options.password) throw new ConfigError("--range needs --password");
    for (let n = options.first; n < options.first + options.count; n++)
      yield { jid: options.range.replace("{n}", String(n)), password: options.password };
    return;
  }
  if (!options.file)
    throw new ConfigError("usage: megaphone user import --file F | --range P --count N");
  const lines = readFileSync(options.file, "utf8").split("\n");
  for (const [i, line] of lines.entries()) {
    const text = line.trim();
    if (!text || text.startsWith("#")) continue;
    const space = text.search(/\s/);
    const jid = space < 0 ? text : text.slice(0, space);
    const password = space < 0 ? options.password : text.slice(space).trim();
    if (!password) throw new ConfigError(`line ${i + 1}: no password (and no --password)`);
    yield { jid, password };
  }
}

function bareJidOf(text: string): string {
  let jid;
  try {
    jid = parseJid(text);
  } catch {
    throw new ConfigError(`"${text}" is not a valid JID`);
  }
  if (!jid.local || jid.resource) throw new ConfigError(`"${text}" must be a bare JID user@domain`);
  return jid.bareString();
}

export async function runUserImport(config: Config, options: ImportOptions): Promise<number> {
  if (!config.redis) throw new ConfigError("megaphone user import needs --redis / MEGAPHONE_REDIS");
  const backend = createBackend(config, silentLogger);
  const shared = new Map<string, Account>();
  const salt = randomBytes(SALT_BYTES);
  const accountFor = (password: string): Account => {
    if (!options.sharedSalt) return createAccount(password, config.scramIterations);
    let account = shared.get(password);
    if (!account) {
      const iterations = config.scramIterations;
      account = {
        scram: {
          "SCRAM-SHA-1": deriveCredential("SCRAM-SHA-1", password, iterations, salt),
          "SCRAM-SHA-256": deriveCredential("SCRAM-SHA-256", password, iterations, salt),
        },
        createdAt: Date.now(),
      };
      shared.set(password, account);
    }
    return account;
  };
  const ring = options.rosterRing;
  if (ring !== 0) {
    if (options.range === undefined) throw new ConfigError("--roster-ring goes with --range");
    if (!(Number.isInteger(ring) && ring > 0 && ring % 2 === 0 && ring < options.count))
      throw new ConfigError("--roster-ring must be an even number below --count");
  }
  let created = 0;
  let existed = 0;
  let contacts = 0;
  const started = Date.now();
  const writes = new Bounded(IN_FLIGHT);
  try {
    for (const { jid, password } of accountsOf(options)) {
      const bare = bareJidOf(jid);
      await writes.add(
        backend.accounts.create(bare, accountFor(password)).then((done) => {
          if (done) created++;
          else existed++;
        }),
      );
    }
    if (ring > 0 && options.range !== undefined) {
      const range = options.range;
      const jidOf = (i: number) =>
        range.replace("{n}", String(options.first + ((i + options.count) % options.count)));
      for (let i = 0; i < options.count; i++) {
        const owner = jidOf(i);
        for (let d = 1; d <= ring / 2; d++) {
          for (const contact of [jidOf(i + d), jidOf(i - d)]) {
            const item = { jid: contact, subscription: "both" as const, groups: ["bench"] };
            await writes.add(
              backend.rosters.replaceItem(owner, contact, undefined, item, ring + 1).then((r) => {
                if (r.ok) contacts++;
              }),
            );
          }
        }
      }
    }
    await writes.drain();
  } finally {
    await backend.close();
  }
  const seconds = (Date.now() - started) / 1000;
  const items = ring > 0 ? `, roster items ${contacts}` : "";
  console.log(`created ${created}, existed already ${existed}${items}, in ${seconds.toFixed(1)} s`);
  return 0;
}

/** At most `limit` writes in flight (ioredis pipelines the ones issued together). */
class Bounded {
  private readonly inFlight = new Set<Promise<void>>();
  constructor(private readonly limit: number) {}

  async add(write: Promise<void>): Promise<void> {
    const tracked: Promise<void> = write.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    if (this.inFlight.size >= this.limit) await Promise.race(this.inFlight);
  }

  drain(): Promise<unknown> {
    return Promise.all(this.inFlight);
  }
}
