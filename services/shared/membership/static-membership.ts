// A fixed member list from configuration (tests, canaries, a single process): nobody
// heartbeats and the set never changes while joined. A static membership of one member owns
// every shard. It cannot notice a dead member, so it suits only deployments whose members are
// started and stopped together; shard leases still keep two processes off one shard when the
// list is wrong.
import { normalizeMembers, type Membership, type MembershipListener } from "./membership.js";
import { MembershipView } from "./membership-view.js";

export class StaticMembership implements Membership {
  private readonly configured: readonly string[];
  private readonly view = new MembershipView((err) => {
    throw err;
  });

  constructor(members: readonly string[]) {
    this.configured = normalizeMembers(members);
    if (this.configured.length === 0 || this.configured.includes(""))
      throw new Error("a static membership needs at least one non-empty member id");
  }

  /** Refuses an id missing from the list: such a process would own no shard, silently. */
  async join(memberId: string): Promise<void> {
    if (!this.configured.includes(memberId))
      throw new Error(
        `member ${JSON.stringify(memberId)} is not in the static membership (${this.configured.join(", ")})`,
      );
    this.view.set(this.configured);
  }

  members(): readonly string[] {
    return this.view.members();
  }

  onChange(listener: MembershipListener): () => void {
    return this.view.onChange(listener);
  }

  async leave(): Promise<void> {
    this.view.set([]);
  }

  async close(): Promise<void> {}
}
