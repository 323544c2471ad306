// Reading the settings of config.ts: CLI flags (--kebab-case) and environment variables
// (MEGAPHONE_UPPER_SNAKE), flags winning; each value parsed by its kind and checked against its
// floor, ceiling and rule once at start-up, plus the rules that tie settings together; a bad
// value stops the start with a ConfigError naming the setting. Also the --help listing. Nothing
// else in the code base reads process.env.
import { DEFAULTS, SETTINGS, type Config, type Setting } from "./config.js";

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export function envName(key: string): string {
  return "MEGAPHONE_" + key.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();
}

export function flagName(key: string): string {
  return "--" + key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

function parseValue(key: string, setting: Setting, raw: string, source: string): unknown {
  const where = `${source} (setting ${key})`;
  switch (setting.kind) {
    case "string":
      return raw;
    case "list":
      return raw === "" ? [] : raw.split(/[\s,]+/).filter(Boolean);
    case "bool":
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new ConfigError(`${where}: "${raw}" is not a boolean (true/false)`);
    case "int": {
      if (!/^-?\d+$/.test(raw.trim()))
        throw new ConfigError(`${where}: "${raw}" is not an integer`);
      const n = Number(raw);
      if (setting.min !== undefined && n < setting.min)
        throw new ConfigError(`${where}: ${n} is below the minimum ${setting.min}`);
      if (setting.max !== undefined && n > setting.max)
        throw new ConfigError(`${where}: ${n} is above the maximum ${setting.max}`);
      return n;
    }
  }
}

export interface ParsedArgs {
  config: Config;
  /** Arguments that are not flags, in order (sub-commands, JIDs). */
  positional: string[];
  /** Boolean switches that are not settings (e.g. --help, --demo). */
  switches: Set<string>;
}

/**
 * Reads settings from flags and the environment. `only` limits which settings a
 * sub-command accepts so that a typo or a flag for the other tier is refused.
 */
export function parseArgs(
  argv: string[],
  env: Record<string, string | undefined>,
  knownSwitches: string[] = ["help", "demo"],
  overrides: Partial<Config> = {},
): ParsedArgs {
  const byFlag = new Map<string, keyof Config>();
  for (const key of Object.keys(SETTINGS) as (keyof Config)[]) byFlag.set(flagName(key), key);

  const values: Record<string, unknown> = { ...DEFAULTS, ...overrides };
  for (const key of Object.keys(SETTINGS) as (keyof Config)[]) {
    const raw = env[envName(key)];
    if (raw !== undefined) values[key] = parseValue(key, SETTINGS[key], raw, envName(key));
  }

  const positional: string[] = [];
  const switches = new Set<string>();
  const lists = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const key = byFlag.get(flag);
    if (!key) {
      const name = flag.slice(2);
      if (knownSwitches.includes(name) && eq < 0) {
        switches.add(name);
        continue;
      }
      throw new ConfigError(`unknown option ${flag} (see --help)`);
    }
    const setting = SETTINGS[key];
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (setting.kind === "bool" && (argv[i + 1] === undefined || argv[i + 1].startsWith("--")))
      raw = "true";
    else {
      if (argv[i + 1] === undefined) throw new ConfigError(`${flag} needs a value`);
      raw = argv[++i];
    }
    if (setting.kind === "list") {
      // A repeated flag gives one entry each, verbatim (a password may hold a comma).
      const acc = lists.get(key) ?? [];
      acc.push(raw);
      lists.set(key, acc);
    } else values[key] = parseValue(key, setting, raw, flag);
  }
  for (const [key, list] of lists) values[key] = list;

  for (const key of Object.keys(SETTINGS) as (keyof Config)[]) {
    const check = SETTINGS[key].check as ((v: unknown) => string | undefined) | undefined;
    const problem = check?.(values[key]);
    if (problem) throw new ConfigError(`${flagName(key)} / ${envName(key)}: ${problem}`);
    const normalize = SETTINGS[key].normalize as ((v: unknown) => unknown) | undefined;
    if (normalize) {
      try {
        values[key] = normalize(values[key]);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new ConfigError(
          `${flagName(key)} / ${envName(key)}: "${String(values[key])}" is invalid (${reason})`,
        );
      }
    }
  }
  const config = values as unknown as Config;
  if (config.inboundBurstBytes < config.maxStanzaBytes)
    throw new ConfigError(
      `${envName("inboundBurstBytes")} (${config.inboundBurstBytes}) must be at least ${envName("maxStanzaBytes")} (${config.maxStanzaBytes}), or no maximal stanza could ever pass`,
    );
  if (config.inboundFrameCostBytes > config.inboundBurstBytes)
    throw new ConfigError(
      `${envName("inboundFrameCostBytes")} (${config.inboundFrameCostBytes}) must not exceed ${envName("inboundBurstBytes")} (${config.inboundBurstBytes}), or no frame could ever pass`,
    );
  // A dead edge is noticed edgeHeartbeatTtlMs after its last heartbeat; its inbox must still be
  // there, with as long again left for the recovery, or what it never delivered expires unseen.
  if (config.edgeInboxTtlMs < 2 * config.edgeHeartbeatTtlMs)
    throw new ConfigError(
      `${envName("edgeInboxTtlMs")} (${config.edgeInboxTtlMs}) must be at least twice ${envName("edgeHeartbeatTtlMs")} (${config.edgeHeartbeatTtlMs}), or a dead edge's inbox could expire before it is recovered`,
    );
  // A dead member must have left the live set by the time its leases lapse, so that its
  // shards' next owners are already trying to take them: the pause stays the lease time.
  if (config.membershipTtlMs + config.membershipHeartbeatIntervalMs > config.shardLeaseTtlMs)
    throw new ConfigError(
      `${envName("membershipTtlMs")} + ${envName("membershipHeartbeatIntervalMs")} (${config.membershipTtlMs + config.membershipHeartbeatIntervalMs}) must not exceed ${envName("shardLeaseTtlMs")} (${config.shardLeaseTtlMs}), or a dead member's shards would wait for the membership, not the lease`,
    );
  if ((config.membership === "redis" || config.membership === "kubernetes") && !config.redis)
    throw new ConfigError(
      `${envName("membership")}=${config.membership} needs ${envName("redis")} (shard leases live there)`,
    );
  if (config.membership === "kubernetes" && !config.kubernetesNamespace)
    throw new ConfigError(
      `${envName("membership")}=kubernetes needs ${envName("kubernetesNamespace")} (from the downward API: metadata.namespace)`,
    );
  // The drain must end before the grace does, or its last slices would all close at once.
  if (config.drainDelayMs + config.drainWindowMs > config.shutdownGraceMs)
    throw new ConfigError(
      `${envName("drainDelayMs")} (${config.drainDelayMs}) + ${envName("drainWindowMs")} (${config.drainWindowMs}) must fit in ${envName("shutdownGraceMs")} (${config.shutdownGraceMs}), which also covers the inbox drain after them`,
    );
  if (Boolean(config.tlsCert) !== Boolean(config.tlsKey))
    throw new ConfigError(
      `${envName("tlsCert")} and ${envName("tlsKey")} go together: set both or neither`,
    );
  const c2sNeedsTls = config.c2sTlsPort >= 0 || (config.c2sPort >= 0 && config.c2sRequireTls);
  if (c2sNeedsTls && !config.tlsCert && !config.tlsCertDir)
    throw new ConfigError(
      `${envName(config.c2sTlsPort >= 0 ? "c2sTlsPort" : "c2sPort")} needs a certificate: set ${envName("tlsCert")} and ${envName("tlsKey")}, or ${envName("tlsCertDir")}` +
        (config.c2sTlsPort >= 0 ? "" : ` (or ${envName("c2sRequireTls")}=false for plaintext)`),
    );
  parseShardRanges(config.shards, config.shardCount);
  return { config, positional, switches };
}

/** "0-7,12" → [0..7, 12]; empty → every shard. Refuses shards outside [0, shardCount). */
export function parseShardRanges(spec: string, shardCount: number): number[] {
  if (spec.trim() === "") return Array.from({ length: shardCount }, (_, i) => i);
  const shards = new Set<number>();
  for (const part of spec.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new ConfigError(`--shards / MEGAPHONE_SHARDS: "${part}" is not N or N-M`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from || to >= shardCount)
      throw new ConfigError(
        `--shards / MEGAPHONE_SHARDS: "${part}" is outside 0-${shardCount - 1} (MEGAPHONE_SHARD_COUNT=${shardCount})`,
      );
    for (let s = from; s <= to; s++) shards.add(s);
  }
  return [...shards].sort((a, b) => a - b);
}

/**
 * Threads of libuv's pool, which runs PBKDF2 and other crypto off the event loop: libuv reads
 * UV_THREADPOOL_SIZE itself (default 4, at most 1024). Not a Megaphone setting, but what work
 * bound to the pool is sized from; read here because this module is the one that reads the
 * environment.
 */
export function threadPoolSize(env: Record<string, string | undefined> = process.env): number {
  const raw = env.UV_THREADPOOL_SIZE;
  if (raw === undefined) return 4;
  // As libuv does: atoi, 0 (or no number) becomes 1, anything past 1024 (or negative, being
  // unsigned there) becomes 1024.
  const n = Number.parseInt(raw, 10) || 0;
  if (n === 0) return 1;
  return n < 0 || n > 1024 ? 1024 : n;
}

export function helpText(): string {
  const lines: string[] = [];
  for (const [key, s] of Object.entries(SETTINGS)) {
    const def = Array.isArray(s.default) ? s.default.join(",") : String(s.default);
    lines.push(
      `  ${flagName(key).padEnd(26)} ${envName(key).padEnd(36)} ${s.help}${def !== "" ? ` [default: ${def}]` : ""}`,
    );
  }
  return lines.join("\n");
}
