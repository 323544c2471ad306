// A pino logger that keeps its records, so a test can await a logged event (a failed batch,
// a failed acknowledgement) instead of sleeping and hoping it happened.
import { pino, type Logger } from "pino";

export type LogRecord = Record<string, unknown> & { msg?: string; level: number };

export class LogCapture {
  readonly records: LogRecord[] = [];
  readonly logger: Logger;
  private waiters: { check: () => boolean; resolve: () => void }[] = [];

  constructor(level = "warn") {
    this.logger = pino(
      { level },
      {
        write: (line: string) => {
          this.records.push(JSON.parse(line) as LogRecord);
          this.waiters = this.waiters.filter((w) => {
            if (!w.check()) return true;
            w.resolve();
            return false;
          });
        },
      },
    );
  }

  /** Records whose message is `msg`. */
  withMessage(msg: string): LogRecord[] {
    return this.records.filter((r) => r.msg === msg);
  }

  /** Resolves once `msg` has been logged at least `times` times in all. */
  waitFor(msg: string, times = 1, timeoutMs = 5000): Promise<void> {
    const check = () => this.withMessage(msg).length >= times;
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(
          new Error(
            `"${msg}" logged ${this.withMessage(msg).length} times, not ${times}, within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push({ check, resolve: done });
    });
  }
}
