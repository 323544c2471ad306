// Which edge incarnations are alive (DESIGN.md, failure model: "an edge dies"). An edge id is
// stable (the pod name); each process that runs it is one incarnation with its own address
// `<edgeId>:<instance>`, which names its inbox and is what sessions write to. So a restarted
// edge never reads what was meant for its predecessor's sockets, and the sessions can tell the
// predecessor's connections from the new ones. Implementations: MemoryEdgeRegistry (all-in-one,
// where an edge dies only with the whole process) and RedisEdgeRegistry.

export type EdgeHeartbeat =
  /** Renewed. */
  | "alive"
  /**
   * Another incarnation holds the id, or this address was declared dead (its heartbeat lapsed,
   * its connections were ended and its inbox recovered): the edge must stop serving.
   */
  | "lost"
  /**
   * Renewed, but the liveness mark was gone (the backing store lost its data): sessions may
   * have ended this edge's connections meanwhile, so it must close its sockets (their clients
   * log in again) and go on.
   */
  | "reset";

export interface EdgeRegistry {
  /**
   * Claims `edgeId` for the incarnation at `address` and marks the address alive, both with
   * the heartbeat expiry. Resolves undefined when claimed, or the address of the incarnation
   * that holds the id (the claim is not taken then).
   */
  register(edgeId: string, address: string): Promise<string | undefined>;

  /**
   * Renews the claim and the address's liveness. After the backing store lost its data, both
   * are created again (the address was never declared dead) and the answer is "reset".
   */
  heartbeat(edgeId: string, address: string): Promise<EdgeHeartbeat>;

  /** A clean stop: the claim and the liveness go, and the address is forgotten. */
  unregister(edgeId: string, address: string): Promise<void>;

  /** Of `addresses`, those that are not alive (expired, buried or never registered). */
  dead(addresses: readonly string[]): Promise<string[]>;

  /** Registered addresses whose heartbeat stopped: their inboxes still need recovering. */
  expired(): Promise<string[]>;

  /**
   * Declares `address` dead for good, unless it is alive (a late heartbeat wins): true when it
   * is dead now. A buried address can never heartbeat again.
   */
  bury(address: string): Promise<boolean>;

  /** Forgets a buried address once its inbox is recovered. */
  forget(address: string): Promise<void>;
}

export interface EdgeRegistryOptions {
  /** How long a claim and a liveness mark outlive the last heartbeat. */
  heartbeatTtlMs: number;
}
