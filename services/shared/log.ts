// One structured JSON logger (pino). Levels and what they are for:
//   fatal: the process is about to exit;  error: a request or loop failed and was recovered;
//   warn: a client or peer misbehaved, or a limit was hit;  info: lifecycle (start, stop, shard
//   changes);  debug: per-connection events;  trace: stanza bodies (never logged above trace).
// Fields: tier, connId, shard, jid, stanzaId, err.
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(tier: string, level: string): Logger {
  return pino({
    level,
    base: { tier, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}

/** For tests and tools that want silence. */
export const silentLogger: Logger = pino({ level: "silent" });
