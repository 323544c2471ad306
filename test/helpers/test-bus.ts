// The RedisBus every test builds: small reads and short blocking, so that a test's entries are
// read at once and a stopping reader returns quickly; the rest as the service defaults.
import type { RedisBusOptions } from "../../services/shared/bus/redis-bus.js";
import { DEFAULTS } from "../../services/shared/config.js";
import { silentLogger } from "../../services/shared/log.js";
import type { Keys } from "../../services/shared/redis/keys.js";

export function testBusOptions(
  url: string,
  keys: Keys,
  overrides: Partial<RedisBusOptions> = {},
): RedisBusOptions {
  return {
    url,
    keys,
    log: silentLogger,
    readCount: 16,
    entriesInFlight: 4096,
    slowBatchMs: 10,
    blockMs: 50,
    trimIntervalMs: 50,
    claimIdleMs: DEFAULTS.claimIdleMs,
    edgeInboxTtlMs: DEFAULTS.edgeInboxTtlMs,
    ...overrides,
  };
}
