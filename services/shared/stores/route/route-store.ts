// Online resources of each user (RFC 6120 §7, RFC 6121 §4): which connection holds which
// resource, and the last presence it broadcast, so that any session member can route to it
// and answer probes on its behalf. Routing data and presence payloads are kept apart: every
// routed stanza reads the bindings (list), while the presence XML (up to maxPresenceBytes per
// resource) is read only where presence is needed (presences: probes, current presence).

/** A bound resource as routing sees it: no presence payload. */
export interface OnlineResource {
  resource: string;
  connId: string;
  /** Priority of the last available presence (RFC 6121 §4.7.2.3), 0 before any. */
  priority: number;
  /** Sent available presence (RFC 6121 §4.2) and not unavailable since: it gets broadcasts. */
  available: boolean;
  /** Whether the resource requested the roster (an "interested resource", RFC 6121 §2.1.6). */
  interested: boolean;
  /**
   * Two-hop delivery (docs/capacity.md): the address of the edge holding the connection's
   * socket, present only while senders may write stanzas there themselves (the connection's
   * session has nothing to add: available, no XEP-0198, not BOSH). Never present on an
   * unavailable binding; a new binding (a takeover) starts without it.
   */
  edge?: string;
}

/** An available resource with the last presence it broadcast (stanza XML, stamped). */
export interface ResourcePresence {
  resource: string;
  connId: string;
  presence: string;
}

/**
 * A change to a binding. `presence` set makes the resource available with that presence;
 * present with the value undefined makes it unavailable and drops the stored presence (and
 * `edge`). `edge` set records the edge address senders may write to directly, kept only if
 * the binding is available after the patch; present with the value undefined removes it.
 */
export type RoutePatch = Partial<Pick<OnlineResource, "priority" | "interested">> & {
  presence?: string | undefined;
  edge?: string | undefined;
};

/**
 * The binding a bind replaced (resource conflict, RFC 6120 §7.7.2.2): the connection that held
 * the resource, and whether it was available (had sent presence its contacts still believe)
 * at the instant it lost the resource.
 */
export interface TakenOver {
  connId: string;
  available: boolean;
}

/**
 * What bind did: bound, with the binding it replaced if any; or refused because the user
 * already has the most resources allowed (RFC 6120 §7.6.2.1).
 */
export type BindResult = { ok: true; previous?: TakenOver } | { ok: false; reason: "full" };

export interface RouteStore {
  /**
   * Binds `resource` of `bareJid` to `connId`. A resource that is already bound is always
   * taken over (its fields reset, its presence dropped) and the result names the previous
   * holder; a new resource is bound only while the user has fewer than `maxResources` bound,
   * else nothing changes and the result is `{ ok: false, reason: "full" }`. Atomic: the bound
   * holds under concurrent binds, and each concurrent bind of one resource sees exactly one
   * predecessor. The same connection binding the same resource again (a bind delivered
   * again) gets the same result as its first bind, so it can finish what that one started.
   */
  bind(
    bareJid: string,
    resource: string,
    connId: string,
    maxResources: number,
  ): Promise<BindResult>;
  /**
   * Updates a bound resource, only while it is still bound to `connId`; false (and no change)
   * otherwise. Fields absent from `patch` are kept (see RoutePatch for `presence`). Atomic:
   * the binding's availability and its stored presence change together.
   */
  update(bareJid: string, resource: string, connId: string, patch: RoutePatch): Promise<boolean>;
  /** Removes the binding (and its presence) only if still held by `connId`; true if removed. Atomic. */
  unbind(bareJid: string, resource: string, connId: string): Promise<boolean>;
  /** All bound resources of a user (any order), without presence payloads. */
  list(bareJid: string): Promise<OnlineResource[]>;
  /** The available resources of a user with their last presence (any order). */
  presences(bareJid: string): Promise<ResourcePresence[]>;
}
