// Fencing for the shard state written outside snapshots and acknowledgements (the XEP-0198
// unacked queues, directed-presence sets): in a session process, each such write carries the
// token of the member's lease on the shard and is refused (FencedError) unless that lease is
// still the shard's live one, checked in the same step (FENCED_CALL). Processes that hold no
// leases (the CLI's admin commands) write unfenced, as before: use() is never called there.
import { FencedError } from "./fenced-error.js";

/** A shard's fencing token now: a number, or undefined when no live lease is held. */
export type TokenOf = (shard: number) => number | undefined;

export class ShardFence {
  private tokenOf: TokenOf | undefined;

  /** From now on, writes of shard state carry this process's lease tokens. */
  use(tokenOf: TokenOf): void {
    this.tokenOf = tokenOf;
  }

  /**
   * The token to write `shard`'s state with: undefined when this process writes unfenced;
   * throws FencedError when it fences and holds no live lease on the shard.
   */
  token(shard: number): string | undefined {
    if (!this.tokenOf) return undefined;
    const token = this.tokenOf(shard);
    if (token === undefined) throw FencedError.notHeld(shard);
    return String(token);
  }

  /** The FencedError for a script's "FENCED <live token>" refusal, or `err` unchanged. */
  static refusal(err: unknown, shard: number, token: string): unknown {
    const match = /FENCED ?(\d*)/.exec(String(err));
    if (!match) return err;
    return new FencedError(shard, Number(token), match[1] ? Number(match[1]) : undefined);
  }
}
