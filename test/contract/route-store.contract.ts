// Contract of RouteStore (services/shared/stores/route/route-store.ts).
import assert from "node:assert/strict";
import type {
  OnlineResource,
  ResourcePresence,
  RouteStore,
} from "../../services/shared/stores/route/route-store.js";
import { storePerTest, type StoreFactory } from "./store-factory.js";

const USER = "alice@example.com";
const PRESENCE = "<presence from='alice@example.com/phone'><priority>5</priority></presence>";
const MAX_RESOURCES = 100;

function fresh(resource: string, connId: string): OnlineResource {
  return { resource, connId, priority: 0, available: false, interested: false };
}

const byResource = (a: { resource: string }, b: { resource: string }) =>
  a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0;

async function presences(store: RouteStore, user = USER): Promise<ResourcePresence[]> {
  return (await store.presences(user)).sort(byResource);
}

async function binding(store: RouteStore, resource: string): Promise<OnlineResource | undefined> {
  return (await store.list(USER)).find((each) => each.resource === resource);
}

export function routeStoreContract(name: string, factory: StoreFactory<RouteStore>): void {
  describe(`${name} RouteStore`, () => {
    const store = storePerTest(factory);

    /** bind with a limit no test reaches unless it says so. */
    const bind = (resource: string, connId: string, user = USER, max = MAX_RESOURCES) =>
      store().bind(user, resource, connId, max);

    describe("bind", () => {
      it("lists nothing for a user with no resources", async () => {
        assert.deepEqual(await store().list(USER), []);
      });

      it("binds a free resource with default fields and no previous holder", async () => {
        assert.deepEqual(await bind("phone", "conn-1"), { ok: true });
        assert.deepEqual(await store().list(USER), [fresh("phone", "conn-1")]);
      });

      it("returns the previous holder and resets the fields on conflict", async () => {
        await bind("phone", "conn-1");
        await store().update(USER, "phone", "conn-1", { priority: 5, presence: PRESENCE });
        assert.deepEqual(await bind("phone", "conn-2"), {
          ok: true,
          previous: { connId: "conn-1", available: true },
        });
        assert.deepEqual(await store().list(USER), [fresh("phone", "conn-2")]);
        assert.deepEqual(await presences(store()), [], "the old holder's presence is dropped");
      });

      it("says whether the previous holder was available when it was taken over", async () => {
        await bind("phone", "conn-1");
        assert.deepEqual(await bind("phone", "conn-2"), {
          ok: true,
          previous: { connId: "conn-1", available: false },
        });
        await store().update(USER, "phone", "conn-2", { presence: PRESENCE });
        await store().update(USER, "phone", "conn-2", { presence: undefined });
        assert.deepEqual(await bind("phone", "conn-3"), {
          ok: true,
          previous: { connId: "conn-2", available: false },
        });
      });

      it("answers a bind delivered again as it answered the first", async () => {
        await bind("phone", "conn-1");
        await store().update(USER, "phone", "conn-1", { presence: PRESENCE });
        const first = await bind("phone", "conn-2");
        assert.deepEqual(first, { ok: true, previous: { connId: "conn-1", available: true } });
        assert.deepEqual(await bind("phone", "conn-2"), first);
        assert.deepEqual(await bind("laptop", "conn-3"), { ok: true });
        assert.deepEqual(await bind("laptop", "conn-3"), { ok: true });
        assert.deepEqual(
          await store()
            .list(USER)
            .then((l) => l.sort(byResource)),
          [fresh("laptop", "conn-3"), fresh("phone", "conn-2")],
        );
      });

      it("lists every resource of the user", async () => {
        await bind("phone", "conn-1");
        await bind("laptop", "conn-2");
        await bind("phone", "conn-3", "bob@example.com");
        const listed = (await store().list(USER)).sort((a, b) => (a.connId < b.connId ? -1 : 1));
        assert.deepEqual(listed, [fresh("phone", "conn-1"), fresh("laptop", "conn-2")]);
      });

      it("chains concurrent binds of one resource: each sees exactly one predecessor", async () => {
        const connIds = ["c1", "c2", "c3", "c4", "c5", "c6"];
        // A limit of 1 also checks that taking a resource over never counts as a new one.
        const results = await Promise.all(connIds.map((id) => bind("phone", id, USER, 1)));
        assert.ok(results.every((result) => result.ok));
        const previous = results.map((result) => (result.ok ? result.previous?.connId : undefined));
        assert.equal(previous.filter((id) => id === undefined).length, 1);
        const displaced = previous.filter((id): id is string => id !== undefined);
        assert.equal(new Set(displaced).size, connIds.length - 1);
        const holder = (await binding(store(), "phone"))?.connId;
        assert.ok(holder !== undefined && !displaced.includes(holder));
      });
    });

    describe("bind limit", () => {
      it("refuses a new resource once max resources are bound, changing nothing", async () => {
        assert.deepEqual(await bind("phone", "conn-1", USER, 2), { ok: true });
        assert.deepEqual(await bind("laptop", "conn-2", USER, 2), { ok: true });
        assert.deepEqual(await bind("tablet", "conn-3", USER, 2), { ok: false, reason: "full" });
        const listed = (await store().list(USER)).map((r) => r.resource).sort();
        assert.deepEqual(listed, ["laptop", "phone"]);
      });

      it("always lets a bound resource be taken over, even at the limit", async () => {
        await bind("phone", "conn-1", USER, 1);
        await store().update(USER, "phone", "conn-1", { priority: 5, presence: PRESENCE });
        assert.deepEqual(await bind("phone", "conn-2", USER, 1), {
          ok: true,
          previous: { connId: "conn-1", available: true },
        });
        assert.deepEqual(await store().list(USER), [fresh("phone", "conn-2")]);
      });

      it("takes a resource over even when the limit was lowered below the bound count", async () => {
        await bind("phone", "conn-1", USER, 3);
        await bind("laptop", "conn-2", USER, 3);
        assert.deepEqual(await bind("phone", "conn-3", USER, 1), {
          ok: true,
          previous: { connId: "conn-1", available: false },
        });
        assert.deepEqual(await bind("tablet", "conn-4", USER, 1), { ok: false, reason: "full" });
      });

      it("frees a place when a resource is unbound", async () => {
        await bind("phone", "conn-1", USER, 1);
        assert.deepEqual(await bind("laptop", "conn-2", USER, 1), { ok: false, reason: "full" });
        await store().unbind(USER, "phone", "conn-1");
        assert.deepEqual(await bind("laptop", "conn-2", USER, 1), { ok: true });
      });

      it("counts each user's resources apart", async () => {
        await bind("phone", "conn-1", USER, 1);
        assert.deepEqual(await bind("phone", "conn-2", "bob@example.com", 1), { ok: true });
        assert.deepEqual(await bind("laptop", "conn-3", USER, 1), { ok: false, reason: "full" });
      });

      it("never overshoots the limit under concurrent binds of new resources", async () => {
        const max = 3;
        const resources = ["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"];
        const results = await Promise.all(
          resources.map((resource, i) => bind(resource, `conn-${i}`, USER, max)),
        );
        assert.equal(results.filter((result) => result.ok).length, max);
        assert.equal(results.filter((result) => !result.ok).length, resources.length - max);
        assert.equal((await store().list(USER)).length, max);
      });
    });

    describe("update", () => {
      it("applies a patch while the connection holds the resource", async () => {
        await bind("phone", "conn-1");
        assert.equal(
          await store().update(USER, "phone", "conn-1", {
            priority: -3,
            presence: PRESENCE,
            interested: true,
          }),
          true,
        );
        assert.deepEqual(await binding(store(), "phone"), {
          ...fresh("phone", "conn-1"),
          priority: -3,
          available: true,
          interested: true,
        });
        assert.deepEqual(await presences(store()), [
          { resource: "phone", connId: "conn-1", presence: PRESENCE },
        ]);
      });

      it("keeps the fields a patch leaves out", async () => {
        await bind("phone", "conn-1");
        await store().update(USER, "phone", "conn-1", { priority: 5, presence: PRESENCE });
        assert.equal(await store().update(USER, "phone", "conn-1", { interested: true }), true);
        assert.deepEqual(await binding(store(), "phone"), {
          ...fresh("phone", "conn-1"),
          priority: 5,
          available: true,
          interested: true,
        });
        assert.equal((await presences(store()))[0]?.presence, PRESENCE);
      });

      it("clears the presence when the patch sets it to undefined", async () => {
        await bind("phone", "conn-1");
        await store().update(USER, "phone", "conn-1", { priority: 5, presence: PRESENCE });
        assert.equal(await store().update(USER, "phone", "conn-1", { presence: undefined }), true);
        assert.deepEqual(await binding(store(), "phone"), {
          ...fresh("phone", "conn-1"),
          priority: 5,
        });
        assert.deepEqual(await presences(store()), []);
      });

      it("keeps presence payloads out of the bindings and lists them apart", async () => {
        await bind("phone", "conn-1");
        await bind("laptop", "conn-2");
        await bind("tablet", "conn-3");
        const big = `<presence><status>${"x".repeat(16 * 1024)}</status></presence>`;
        await store().update(USER, "phone", "conn-1", { presence: PRESENCE });
        await store().update(USER, "laptop", "conn-2", { presence: big });
        await store().update(USER, "phone", "conn-1", { priority: 2 });
        assert.ok(JSON.stringify(await store().list(USER)).length < 400);
        assert.deepEqual(await presences(store()), [
          { resource: "laptop", connId: "conn-2", presence: big },
          { resource: "phone", connId: "conn-1", presence: PRESENCE },
        ]);
        assert.deepEqual(await presences(store(), "bob@example.com"), []);
      });

      it("ignores a connection that no longer holds the resource", async () => {
        await bind("phone", "conn-1");
        await bind("phone", "conn-2");
        assert.equal(await store().update(USER, "phone", "conn-1", { priority: 9 }), false);
        assert.equal(await store().update(USER, "phone", "conn-1", { presence: PRESENCE }), false);
        assert.deepEqual(await store().list(USER), [fresh("phone", "conn-2")]);
        assert.deepEqual(await presences(store()), []);
      });

      it("does not bind a resource that is not bound", async () => {
        assert.equal(await store().update(USER, "phone", "conn-1", { priority: 1 }), false);
        assert.deepEqual(await store().list(USER), []);
      });
    });

    describe("edge (two-hop delivery)", () => {
      const EDGE = "e1:abc";
      const available = async (connId = "conn-1") => {
        await bind("phone", connId);
        await store().update(USER, "phone", connId, { presence: PRESENCE });
      };

      it("records the edge of an available binding, keeps it through updates, and lists it", async () => {
        await available();
        assert.equal(await store().update(USER, "phone", "conn-1", { edge: EDGE }), true);
        await store().update(USER, "phone", "conn-1", { priority: 3, presence: PRESENCE });
        assert.deepEqual(await binding(store(), "phone"), {
          ...fresh("phone", "conn-1"),
          priority: 3,
          available: true,
          edge: EDGE,
        });
      });

      it("never records an edge on a binding that is not available", async () => {
        await bind("phone", "conn-1");
        assert.equal(await store().update(USER, "phone", "conn-1", { edge: EDGE }), true);
        assert.deepEqual(await binding(store(), "phone"), fresh("phone", "conn-1"));
      });

      it("removes the edge when the patch clears it (XEP-0198 enabled)", async () => {
        await available();
        await store().update(USER, "phone", "conn-1", { edge: EDGE });
        assert.equal(await store().update(USER, "phone", "conn-1", { edge: undefined }), true);
        assert.equal((await binding(store(), "phone"))?.edge, undefined);
        assert.equal((await binding(store(), "phone"))?.available, true);
      });

      it("removes the edge in the step that makes the binding unavailable", async () => {
        await available();
        await store().update(USER, "phone", "conn-1", { edge: EDGE });
        await store().update(USER, "phone", "conn-1", { presence: undefined });
        assert.deepEqual(await binding(store(), "phone"), fresh("phone", "conn-1"));
        await store().update(USER, "phone", "conn-1", { presence: PRESENCE });
        assert.equal((await binding(store(), "phone"))?.edge, undefined, "not back by itself");
      });

      it("starts a takeover's binding without the edge, and the old holder cannot set it", async () => {
        await available();
        await store().update(USER, "phone", "conn-1", { edge: EDGE });
        await bind("phone", "conn-2");
        assert.deepEqual(await binding(store(), "phone"), fresh("phone", "conn-2"));
        await store().update(USER, "phone", "conn-2", { presence: PRESENCE });
        assert.equal(await store().update(USER, "phone", "conn-1", { edge: EDGE }), false);
        assert.equal((await binding(store(), "phone"))?.edge, undefined);
      });

      it("goes with the binding at unbind", async () => {
        await available();
        await store().update(USER, "phone", "conn-1", { edge: EDGE });
        await store().unbind(USER, "phone", "conn-1");
        await bind("phone", "conn-1");
        assert.deepEqual(await binding(store(), "phone"), fresh("phone", "conn-1"));
      });
    });

    describe("unbind", () => {
      it("removes the binding of its holder once, with its presence", async () => {
        await bind("phone", "conn-1");
        await bind("laptop", "conn-2");
        await store().update(USER, "phone", "conn-1", { presence: PRESENCE });
        assert.equal(await store().unbind(USER, "phone", "conn-1"), true);
        assert.deepEqual(await store().list(USER), [fresh("laptop", "conn-2")]);
        assert.deepEqual(await presences(store()), []);
        assert.equal(await store().unbind(USER, "phone", "conn-1"), false);
      });

      it("ignores a connection that no longer holds the resource", async () => {
        await bind("phone", "conn-1");
        await bind("phone", "conn-2");
        await store().update(USER, "phone", "conn-2", { presence: PRESENCE });
        assert.equal(await store().unbind(USER, "phone", "conn-1"), false);
        assert.deepEqual(await store().list(USER), [
          { ...fresh("phone", "conn-2"), available: true },
        ]);
        assert.equal((await presences(store())).length, 1);
      });

      it("lets the resource be bound again afterwards", async () => {
        await bind("phone", "conn-1");
        await store().unbind(USER, "phone", "conn-1");
        assert.deepEqual(await bind("phone", "conn-2"), { ok: true });
      });
    });

    it("copies bindings out", async () => {
      await bind("phone", "conn-1");
      const [listed] = await store().list(USER);
      assert.ok(listed);
      listed.connId = "changed";
      listed.priority = 100;
      assert.deepEqual(await store().list(USER), [fresh("phone", "conn-1")]);
    });
  });
}
