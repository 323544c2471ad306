import {
  MemoryMembership,
  MemoryMembershipRegistry,
} from "../../services/shared/membership/memory-membership.js";
import { onlyImpl } from "../helpers/only-impl.js";
import { membershipContract } from "./membership.contract.js";

if (onlyImpl("memory")) {
  membershipContract("memory", async () => {
    const registry = new MemoryMembershipRegistry();
    return {
      member: (options) => new MemoryMembership(registry, options),
      cleanup: async () => {},
    };
  });
}
