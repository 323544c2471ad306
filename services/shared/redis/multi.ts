// MULTI/EXEC for reads or read-and-delete that must see one consistent state. A transaction
// is sent as one batch, so it costs one round trip like a single command.
import type { ChainableCommander } from "ioredis";

/** Runs the transaction and returns each command's reply in order; throws on any error. */
export async function execAll(transaction: ChainableCommander): Promise<unknown[]> {
  const results = await transaction.exec();
  // exec() resolves null only when a WATCHed key changed; our transactions watch nothing.
  if (results === null) throw new Error("Redis transaction aborted");
  return results.map(([error, reply]) => {
    if (error) throw error;
    return reply;
  });
}
