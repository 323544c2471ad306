#!/usr/bin/env node
// The `megaphone` command: all-in-one server, the edge and session services, and account
// administration. Maps flags and MEGAPHONE_* variables onto the typed Config (config.ts, read
// by config-parse.ts).
import { DEFAULTS, type Config } from "../shared/config.js";
import { ConfigError, helpText, parseArgs } from "../shared/config-parse.js";
import { createLogger } from "../shared/log.js";
import { defaultProcessId } from "../shared/process-id.js";
import { PROBE_USAGE, runProbeCommand, splitProbeArgs, type ProbeArgs } from "./probe-command.js";
import { runUserCommand } from "./user-command.js";
import { runUserImport, takeImportOptions } from "./user-import.js";
import { runAllInOne, runEdge, runNode, runSession } from "./services.js";

const USAGE = `usage:
  megaphone start   [--port ${DEFAULTS.port}] [--domain ${DEFAULTS.domain}] [--user JID:PASSWORD …] [--redis URL] [--demo]
  megaphone edge    --redis URL [--port ${DEFAULTS.port}] [--id NAME]
                    [--c2s-port 5222] [--c2s-tls-port 5223] [--tls-cert F --tls-key F | --tls-cert-dir DIR]
                    (TCP c2s, also for start; STARTTLS required unless --c2s-require-tls false)
  megaphone session --redis URL [--shards 0-7,12] [--http-port ${DEFAULTS.httpPort}]
  megaphone node    --redis URL [--port ${DEFAULTS.port}] [--id NAME]
                    (an edge and a session member in one process; run several on one Redis)
  megaphone user add JID [--password P]   (password read from stdin when absent)
  megaphone user del JID
  megaphone user passwd JID [--password P]
  megaphone user import --file F [--password P]            (lines "JID PASSWORD" or "JID")
  megaphone user import --range 'bench{n}@DOMAIN' --count N [--first 1] --password P [--shared-salt]
  megaphone bench login|chat|idle [options]                 (megaphone bench --help)
  ${PROBE_USAGE}

Every setting is a flag and an environment variable (flags win):`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "help") {
    console.log(`${USAGE}\n${helpText()}`);
    return command ? 0 : 2;
  }
  // The load generator has options of its own; it is loaded only when asked for.
  if (command === "bench") {
    const { runBench, BENCH_USAGE } = await import("../bench/bench-command.js");
    if (rest.length === 0 || rest[0] === "--help") {
      console.log(BENCH_USAGE);
      return rest.length === 0 ? 2 : 0;
    }
    return runBench(rest);
  }
  const importing = command === "user" && rest[0] === "import";
  const imported = importing ? takeImportOptions(rest.slice(1)) : undefined;
  if (imported) rest.splice(0, rest.length, "import", ...imported.rest);
  // The probe's own flags (its --password among them) never reach the Config.
  const { probe, rest: settings } =
    command === "probe" ? splitProbeArgs(rest) : { probe: undefined, rest };
  // --password belongs to the user sub-commands only and never reaches the Config.
  let password: string | undefined;
  const args: string[] = [];
  for (let i = 0; i < settings.length; i++) {
    if (settings[i] === "--password") password = settings[++i];
    else if (settings[i].startsWith("--password="))
      password = settings[i].slice("--password=".length);
    else args.push(settings[i]);
  }
  if (password !== undefined && command !== "user")
    throw new ConfigError("--password is only for `megaphone user`");

  const { config, positional, switches } = parseArgs(args, process.env);
  if (switches.has("help")) {
    console.log(`${USAGE}\n${helpText()}`);
    return 0;
  }
  const log = createLogger(command, config.logLevel);
  const withId = (prefix: string): Config => ({
    ...config,
    id: config.id || defaultProcessId(prefix),
  });
  switch (command) {
    case "start":
      return runAllInOne(withId("aio-"), log, switches.has("demo"));
    case "edge":
      if (!config.redis) throw new ConfigError("megaphone edge needs --redis / MEGAPHONE_REDIS");
      return runEdge(withId("e-"), log);
    case "session":
      if (!config.redis) throw new ConfigError("megaphone session needs --redis / MEGAPHONE_REDIS");
      return runSession(withId("s-"), log);
    case "node":
      if (!config.redis) throw new ConfigError("megaphone node needs --redis / MEGAPHONE_REDIS");
      return runNode(withId("n-"), log);
    case "user":
      if (imported) return runUserImport(config, { ...imported.options, password });
      return runUserCommand(config, positional, password);
    case "probe":
      return runProbeCommand(config, positional, probe as ProbeArgs);
    default:
      throw new ConfigError(`unknown command "${command}" (see megaphone --help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== -1) process.exitCode = code;
  },
  (err) => {
    if (err instanceof ConfigError) {
      console.error(`megaphone: ${err.message}`);
      process.exitCode = 2;
    } else {
      console.error(err);
      process.exitCode = 1;
    }
  },
);
