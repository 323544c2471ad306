// What a test client received, in order, and waits that resolve when a matching item is (or
// already was) received, or fail after a timeout with a description of what did arrive.
export class Inbox<T> {
  /** Everything received (minus what `take` consumed), oldest first. */
  readonly items: T[] = [];
  private waiters: { match: (item: T) => boolean; resolve: (item: T) => void }[] = [];

  push(item: T): void {
    this.items.push(item);
    this.waiters = this.waiters.filter((w) => {
      if (!w.match(item)) return true;
      w.resolve(item);
      return false;
    });
  }

  /** The first matching item, received already or to come; it stays in `items`. */
  waitFor(
    match: (item: T) => boolean,
    timeoutMessage: () => string,
    timeoutMs: number,
  ): Promise<T> {
    const seen = this.items.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(timeoutMessage()));
      }, timeoutMs);
      const done = (item: T) => {
        clearTimeout(timer);
        resolve(item);
      };
      this.waiters.push({ match, resolve: done });
    });
  }

  /** Like waitFor, but removes the item from `items`, so the next wait sees the one after. */
  async take(
    match: (item: T) => boolean,
    timeoutMessage: () => string,
    timeoutMs: number,
  ): Promise<T> {
    const item = await this.waitFor(match, timeoutMessage, timeoutMs);
    this.items.splice(this.items.indexOf(item), 1);
    return item;
  }
}
