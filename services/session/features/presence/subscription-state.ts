// RFC 6121 Appendix A (subscription states): how each subscription stanza changes the state
// of one side of a subscription, as pure functions of that side's current state.
//   A.2: the sender's own server processing the outbound stanza ("route?" + new state);
//   A.3: the recipient's server processing the inbound stanza ("deliver?" + new state).
// A state is the roster item's subscription ("None", "To", "From", "Both"), plus "Pending Out"
// (ask="subscribe" on the item) and "Pending In" (a stored inbound request, RFC 6121 §3.1.3).
import type { Subscription } from "../../../shared/stores/roster/roster-store.js";

export type SubscriptionType = "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed";

export const SUBSCRIPTION_TYPES: ReadonlySet<string> = new Set<SubscriptionType>([
  "subscribe",
  "subscribed",
  "unsubscribe",
  "unsubscribed",
]);

export interface SubState {
  subscription: Subscription;
  /** The owner asked for the contact's presence and has no answer yet. */
  pendingOut: boolean;
  /** The contact asked for the owner's presence and has no answer yet. */
  pendingIn: boolean;
}

/** The owner receives the contact's presence. */
export function hasTo(s: Subscription): boolean {
  return s === "to" || s === "both";
}

/** The contact receives the owner's presence. */
export function hasFrom(s: Subscription): boolean {
  return s === "from" || s === "both";
}

export function subscriptionOf(to: boolean, from: boolean): Subscription {
  if (to) return from ? "both" : "to";
  return from ? "from" : "none";
}

export interface OutboundStep {
  /** Whether the stanza goes on to the contact. */
  route: boolean;
  next: SubState;
}

/** RFC 6121 A.2.1–A.2.4: the user's server handling a subscription stanza the user sent. */
export function outbound(type: SubscriptionType, s: SubState): OutboundStep {
  const to = hasTo(s.subscription);
  const from = hasFrom(s.subscription);
  switch (type) {
    case "subscribe":
      // A.2.1: always routed; "None"/"From" (± Pending In) gain Pending Out.
      return { route: true, next: to ? s : { ...s, pendingOut: true } };
    case "unsubscribe":
      // A.2.2: always routed; the "To" half and Pending Out are dropped.
      return {
        route: true,
        next: {
          subscription: subscriptionOf(false, from),
          pendingOut: false,
          pendingIn: s.pendingIn,
        },
      };
    case "subscribed":
      // A.2.3: only an answer to a pending request is routed; it adds the "From" half.
      // (Without Pending In it is a pre-approval, RFC 6121 §3.4, handled by the caller.)
      if (!s.pendingIn || from) return { route: false, next: s };
      return {
        route: true,
        next: {
          subscription: subscriptionOf(to, true),
          pendingOut: s.pendingOut,
          pendingIn: false,
        },
      };
    case "unsubscribed":
      // A.2.4: routed when it cancels "From" or denies Pending In; both are dropped.
      if (!from && !s.pendingIn) return { route: false, next: s };
      return {
        route: true,
        next: {
          subscription: subscriptionOf(to, false),
          pendingOut: s.pendingOut,
          pendingIn: false,
        },
      };
  }
}

export interface InboundStep {
  /** Whether the stanza is delivered to the recipient's client. */
  deliver: boolean;
  /** A.3.1 footnote: the server answers `subscribed` on the recipient's behalf. */
  autoReply: boolean;
  next: SubState;
}

/** RFC 6121 A.3.1–A.3.4: the contact's server handling a subscription stanza from the user. */
export function inbound(type: SubscriptionType, s: SubState): InboundStep {
  const to = hasTo(s.subscription);
  const from = hasFrom(s.subscription);
  const unchanged = { deliver: false, autoReply: false, next: s };
  switch (type) {
    case "subscribe":
      // A.3.1: already subscribed → auto-reply; already pending → nothing; else Pending In.
      if (from) return { ...unchanged, autoReply: true };
      if (s.pendingIn) return unchanged;
      return { deliver: true, autoReply: false, next: { ...s, pendingIn: true } };
    case "unsubscribe":
      // A.3.2: ends "From" and any Pending In.
      if (!from && !s.pendingIn) return unchanged;
      return {
        deliver: true,
        autoReply: false,
        next: {
          subscription: subscriptionOf(to, false),
          pendingOut: s.pendingOut,
          pendingIn: false,
        },
      };
    case "subscribed":
      // A.3.3: only an answer to our Pending Out counts; it adds the "To" half.
      if (!s.pendingOut || to) return unchanged;
      return {
        deliver: true,
        autoReply: false,
        next: {
          subscription: subscriptionOf(true, from),
          pendingOut: false,
          pendingIn: s.pendingIn,
        },
      };
    case "unsubscribed":
      // A.3.4: ends "To" and any Pending Out.
      if (!to && !s.pendingOut) return unchanged;
      return {
        deliver: true,
        autoReply: false,
        next: {
          subscription: subscriptionOf(false, from),
          pendingOut: false,
          pendingIn: s.pendingIn,
        },
      };
  }
}
