// What a test started that would keep mocha's process alive if the test failed midway (a chat
// load's timer, a Redis MONITOR socket, a sampling interval): the test adds each one as it starts
// it, and the suite's afterEach stops them all, so that a failed assertion is reported and mocha
// exits instead of hanging until CI's cut.

export interface Stoppable {
  /** Called after the test even when the test stopped it already: a second call does nothing. */
  stop(): void;
}

export class Running {
  private readonly items: Stoppable[] = [];

  /** `item`, to be stopped after the test whatever happens. */
  add<T extends Stoppable>(item: T): T {
    this.items.push(item);
    return item;
  }

  /** Stops everything added since the last call; for an afterEach, before the processes stop. */
  stopAll(): void {
    for (const item of this.items.splice(0)) item.stop();
  }
}
