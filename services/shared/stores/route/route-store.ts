// Online resources of each user (RFC 6120 §7, RFC 6121 §4): which connection holds which
// resource, and the last presence it broadcast, so that any session member can route to it
// and answer probes on its behalf.

export interface OnlineResource {
  resource: string;
  connId: string;
  /** Priority of the last available presence (RFC 6121 §4.7.2.3), 0 before any. */
  priority: number;
  /** Last broadcast available presence (stanza XML, stamped), absent before initial presence. */
  presence?: string;
  /** Whether the resource requested the roster (an "interested resource", RFC 6121 §2.1.6). */
  interested: boolean;
}

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
   * taken over (its fields reset) and the result names the previous holder; a new resource is
   * bound only while the user has fewer than `maxResources` bound, else nothing changes and the
   * result is `{ ok: false, reason: "full" }`. Atomic: the bound holds under concurrent binds,
   * and each concurrent bind of one resource sees exactly one predecessor.
   */
  bind(
    bareJid: string,
    resource: string,
    connId: string,
    maxResources: number,
  ): Promise<BindResult>;
  /**
   * Updates fields of a bound resource, only while it is still bound to `connId`; false (and no
   * change) otherwise. Fields absent from `patch` are kept; `presence` present with the value
   * undefined clears the stored presence (the resource became unavailable). Atomic.
   */
  update(
    bareJid: string,
    resource: string,
    connId: string,
    patch: Partial<Pick<OnlineResource, "priority" | "presence" | "interested">>,
  ): Promise<boolean>;
  /** Removes the binding only if it is still held by `connId`; true if removed. Atomic. */
  unbind(bareJid: string, resource: string, connId: string): Promise<boolean>;
  /** All bound resources of a user (any order). */
  list(bareJid: string): Promise<OnlineResource[]>;
}
