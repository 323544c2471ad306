// Contract of RouteStore (services/shared/stores/route/route-store.ts).
import assert from "node:assert/strict";
import type { OnlineResource, RouteStore } from "../../services/shared/stores/route/route-store.js";
import { storePerTest, type StoreFactory } from "./store-factory.js";

const USER = "alice@example.com";
const PRESENCE = "<presence from='alice@example.com/phone'><priority>5</priority></presence>";

function fresh(resource: string, connId: string): OnlineResource {
  return { resource, connId, priority: 0, interested: false };
}

async function binding(store: RouteStore, resource: string): Promise<OnlineResource | undefined> {
  return (await store.list(USER)).find((each) => each.resource === resource);
}

export function routeStoreContract(name: string, factory: StoreFactory<RouteStore>): void {
  describe(`${name} RouteStore`, () => {
    const store = storePerTest(factory);

    describe("bind", () => {
      it("lists nothing for a user with no resources", async () => {
        assert.deepEqual(await store().list(USER), []);
      });

      it("binds a free resource with default fields and no previous holder", async () => {
        assert.equal(await store().bind(USER, "phone", "conn-1"), undefined);
        assert.deepEqual(await store().list(USER), [fresh("phone", "conn-1")]);
      });

      it("returns the previous holder and resets the fields on conflict", async () => {
        await store().bind(USER, "phone", "conn-1");
        await store().update(USER, "phone", "conn-1", { priority: 5, presence: PRESENCE });
        assert.equal(await store().bind(USER, "phone", "conn-2"), "conn-1");
        assert.deepEqual(await store().list(USER), [fresh("phone", "conn-2")]);
      });

      it("lists every resource of the user", async () => {
        await store().bind(USER, "phone", "conn-1");
        await store().bind(USER, "laptop", "conn-2");
        await store().bind("bob@example.com", "phone", "conn-3");
        const listed = (await store().list(USER)).sort((a, b) => (a.connId < b.connId ? -1 : 1));
        assert.deepEqual(listed, [fresh("phone", "conn-1"), fresh("laptop", "conn-2")]);
      });

      it("chains concurrent binds of one resource: each sees exactly one predecessor", async () => {
        const connIds = ["c1", "c2", "c3", "c4", "c5", "c6"];
        const previous = await Promise.all(connIds.map((id) => store().bind(USER, "phone", id)));
        assert.equal(previous.filter((id) => id === undefined).length, 1);
        const displaced = previous.filter((id): id is string => id !== undefined);
        assert.equal(new Set(displaced).size, connIds.length - 1);
        const holder = (await binding(store(), "phone"))?.connId;
        assert.ok(holder !== undefined && !displaced.includes(holder));
      });
    });

    describe("update", () => {
      it("applies a patch while the connection holds the resource", async () => {
        await store().bind(USER, "phone", "conn-1");
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
          presence: PRESENCE,
          interested: true,
        });
      });

      it("keeps the fields a patch leaves out", async () => {
        await store().bind(USER, "phone", "conn-1");
        await store().update(USER, "phone", "conn-1", { priority: 5, presence: PRESENCE });
        assert.equal(await store().update(USER, "phone", "conn-1", { interested: true }), true);
        assert.deepEqual(await binding(store(), "phone"), {
          ...fresh("phone", "conn-1"),
          priority: 5,
          presence: PRESENCE,
          interested: true,
        });
      });

      it("clears the presence when the patch sets it to undefined", async () => {
        await store().bind(USER, "phone", "conn-1");
        await store().update(USER, "phone", "conn-1", { priority: 5, presence: PRESENCE });
        assert.equal(await store().update(USER, "phone", "conn-1", { presence: undefined }), true);
        assert.deepEqual(await binding(store(), "phone"), {
          ...fresh("phone", "conn-1"),
          priority: 5,
        });
      });

      it("ignores a connection that no longer holds the resource", async () => {
        await store().bind(USER, "phone", "conn-1");
        await store().bind(USER, "phone", "conn-2");
        assert.equal(await store().update(USER, "phone", "conn-1", { priority: 9 }), false);
        assert.deepEqual(await store().list(USER), [fresh("phone", "conn-2")]);
      });

      it("does not bind a resource that is not bound", async () => {
        assert.equal(await store().update(USER, "phone", "conn-1", { priority: 1 }), false);
        assert.deepEqual(await store().list(USER), []);
      });
    });

    describe("unbind", () => {
      it("removes the binding of its holder once", async () => {
        await store().bind(USER, "phone", "conn-1");
        await store().bind(USER, "laptop", "conn-2");
        assert.equal(await store().unbind(USER, "phone", "conn-1"), true);
        assert.deepEqual(await store().list(USER), [fresh("laptop", "conn-2")]);
        assert.equal(await store().unbind(USER, "phone", "conn-1"), false);
      });

      it("ignores a connection that no longer holds the resource", async () => {
        await store().bind(USER, "phone", "conn-1");
        await store().bind(USER, "phone", "conn-2");
        assert.equal(await store().unbind(USER, "phone", "conn-1"), false);
        assert.deepEqual(await store().list(USER), [fresh("phone", "conn-2")]);
      });

      it("lets the resource be bound again afterwards", async () => {
        await store().bind(USER, "phone", "conn-1");
        await store().unbind(USER, "phone", "conn-1");
        assert.equal(await store().bind(USER, "phone", "conn-2"), undefined);
      });
    });

    it("copies bindings out", async () => {
      await store().bind(USER, "phone", "conn-1");
      const [listed] = await store().list(USER);
      assert.ok(listed);
      listed.connId = "changed";
      listed.priority = 100;
      assert.deepEqual(await store().list(USER), [fresh("phone", "conn-1")]);
    });
  });
}
