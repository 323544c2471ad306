// Runs every store contract against the in-memory implementations. Setup only.
import { MemoryAccountStore } from "../../services/shared/stores/account/memory-account-store.js";
import { MemoryOfflineStore } from "../../services/shared/stores/offline/memory-offline-store.js";
import { MemoryRosterStore } from "../../services/shared/stores/roster/memory-roster-store.js";
import { MemoryRouteStore } from "../../services/shared/stores/route/memory-route-store.js";
import { MemorySnapshotStore } from "../../services/shared/stores/snapshot/memory-snapshot-store.js";
import { MemorySmQueueStore } from "../../services/shared/stores/sm/memory-sm-queue-store.js";
import { smQueueStoreContract } from "./sm-queue-store.contract.js";
import { MemoryFastTokenStore } from "../../services/shared/stores/fast-token/memory-fast-token-store.js";
import { fastTokenStoreContract } from "./fast-token-store.contract.js";
import { MemoryDirectedPresenceStore } from "../../services/shared/stores/directed/memory-directed-store.js";
import { accountStoreContract } from "./account-store.contract.js";
import { directedStoreContract } from "./directed-store.contract.js";
import { offlineStoreContract } from "./offline-store.contract.js";
import { rosterStoreContract } from "./roster-store.contract.js";
import { routeStoreContract } from "./route-store.contract.js";
import { snapshotStoreContract } from "./snapshot-store.contract.js";
import type { StoreFactory } from "./store-factory.js";

const onlyImpl = process.env.MEGAPHONE_TEST_ONLY_IMPL || undefined;

function memory<S>(create: () => S): StoreFactory<S> {
  return async () => ({ store: create(), cleanup: async () => {} });
}

if (onlyImpl === undefined || onlyImpl === "memory") {
  describe("memory stores", () => {
    accountStoreContract(
      "memory",
      memory(() => new MemoryAccountStore()),
    );
    rosterStoreContract(
      "memory",
      memory(() => new MemoryRosterStore()),
    );
    routeStoreContract(
      "memory",
      memory(() => new MemoryRouteStore()),
    );
    offlineStoreContract(
      "memory",
      memory(() => new MemoryOfflineStore()),
    );
    directedStoreContract(
      "memory",
      memory(() => new MemoryDirectedPresenceStore()),
    );
    snapshotStoreContract(
      "memory",
      memory(() => new MemorySnapshotStore()),
    );
    smQueueStoreContract(
      "memory",
      memory(() => new MemorySmQueueStore()),
    );
    fastTokenStoreContract(
      "memory",
      memory(() => new MemoryFastTokenStore()),
    );
  });
}
