import { MemoryBus } from "../../services/shared/bus/memory-bus.js";
import { busContract } from "./bus.contract.js";
import { onlyImpl } from "../helpers/only-impl.js";

if (onlyImpl("memory")) {
  busContract("memory", async () => {
    const bus = new MemoryBus({ readCount: 16, retryDelayMs: 10 });
    return { bus, cleanup: () => bus.close() };
  });
}
