// Thrown when a fenced write of a shard is refused: the writer's lease is no longer the shard's
// live lease (it lapsed, was released, or another member took the shard with a newer token).
// Nothing of the write happened. The writer must stop serving the shard; the entries it did
// not acknowledge stay pending for the new owner.
export class FencedError extends Error {
  constructor(
    readonly shard: number,
    /** The token the refused write carried. */
    readonly token: number,
    /** The token of the shard's live lease, or undefined when the shard has none. */
    readonly liveToken: number | undefined,
  ) {
    super(
      `write to shard ${shard} with fencing token ${token} refused: ` +
        (liveToken === undefined
          ? "the shard has no live lease"
          : `the shard's live lease has token ${liveToken}`),
    );
    this.name = "FencedError";
  }

  /** A write refused before it was sent: this member holds no live lease on the shard. */
  static notHeld(shard: number): FencedError {
    const err = new FencedError(shard, 0, undefined);
    err.message = `write to shard ${shard} refused: this member holds no live lease on it`;
    return err;
  }
}
