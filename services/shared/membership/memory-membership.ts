// In-process membership (tests, all-in-one): the members of one process share a
// MemoryMembershipRegistry, which keeps each member's expiry exactly as Redis would, so a member
// whose instance was closed without leaving expires like a killed process.
import { silentLogger, type Logger } from "../log.js";
import { HeartbeatMembership } from "./heartbeat-membership.js";
import type { MembershipOptions } from "./membership.js";

/** The shared live set: member id → expiry (ms since the epoch). */
export class MemoryMembershipRegistry {
  private readonly expiries = new Map<string, number>();

  renew(memberId: string, ttlMs: number): string[] {
    const now = Date.now();
    this.expiries.set(memberId, now + ttlMs);
    for (const [id, expiry] of this.expiries) if (expiry <= now) this.expiries.delete(id);
    return [...this.expiries.keys()];
  }

  remove(memberId: string): void {
    this.expiries.delete(memberId);
  }
}

export class MemoryMembership extends HeartbeatMembership {
  constructor(
    private readonly registry: MemoryMembershipRegistry,
    options: MembershipOptions,
    log: Logger = silentLogger,
  ) {
    super(options, log);
  }

  protected async renew(memberId: string): Promise<string[]> {
    return this.registry.renew(memberId, this.options.ttlMs);
  }

  protected async remove(memberId: string): Promise<void> {
    this.registry.remove(memberId);
  }
}
