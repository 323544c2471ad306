// RFC 6121 §2.1.6 (roster push): every change of a user's roster is sent to each of the user's
// interested resources (those that requested the roster, §2.1.3), including the one whose
// request caused it. The client's results to pushes are dropped by the handler chain.
import { randomId } from "../../../shared/random-id.js";
import { Element } from "ltx";
import { NS_CLIENT } from "../../../shared/ns.js";
import type { SessionContext } from "../../core/context.js";
import { rosterQuery, type PushedItem } from "./roster-xml.js";

export async function pushRosterItem(
  ctx: SessionContext,
  user: string,
  item: PushedItem,
  version: string,
): Promise<void> {
  const resources = await ctx.stores.routes.list(user);
  await Promise.all(
    resources
      .filter((r) => r.interested)
      .map((r) => {
        // §2.1.6: no `from` (which the client reads as its own bare JID), a fresh id each time.
        const push = new Element("iq", {
          xmlns: NS_CLIENT,
          type: "set",
          id: `push-${randomId(8, "hex")}`,
          to: `${user}/${r.resource}`,
        });
        push.cnode(rosterQuery(version, [item]));
        return ctx.deliver(r.connId, push);
      }),
  );
}
