// Keeps the edge's inbox reader running until the edge stops: the bus retries reads itself,
// but if consumeEdge gives up (e.g. its first command fails) it is restarted with backoff.
import type { Bus, EdgeBatchHandler, InProcessEdgeWriter } from "../shared/bus/bus.js";
import { delay, retryDelayMs } from "../shared/async/delay.js";
import type { LoopHealth } from "../shared/async/loop-health.js";
import type { Logger } from "../shared/log.js";

export async function runInboxReader(
  bus: Bus,
  edgeId: string,
  handler: EdgeBatchHandler,
  signal: AbortSignal,
  log: Logger,
  health: LoopHealth,
  inProcess?: InProcessEdgeWriter,
): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    try {
      await bus.consumeEdge(edgeId, handler, signal, health, inProcess);
      if (signal.aborted) break;
      log.error("edge inbox reader returned; restarting");
    } catch (err) {
      if (signal.aborted) break;
      log.error({ err }, "edge inbox reader failed; restarting");
    }
    health.failed();
    await delay(retryDelayMs(failures++), signal);
  }
}
