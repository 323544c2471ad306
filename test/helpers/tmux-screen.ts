// A terminal program driven the way a person would: run in a detached tmux session on a
// private tmux server (its own socket, so no user's tmux is touched), typed at with
// `send-keys`, and read back with `capture-pane -p`.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { until } from "./poll.js";

const SESSION = "client";

export class TmuxScreen {
  private constructor(private readonly socket: string) {}

  /**
   * Starts `command` in a new detached session of a tmux server listening on `dir`/tmux.sock,
   * with `env` added to its environment (the server is new, so it inherits `env` too).
   */
  static start(
    dir: string,
    command: string[],
    env: Record<string, string>,
    size = { columns: 200, rows: 50 },
  ): TmuxScreen {
    const screen = new TmuxScreen(join(dir, "tmux.sock"));
    const setEnv = Object.entries(env).flatMap(([name, value]) => ["-e", `${name}=${value}`]);
    screen.tmux(
      [
        "new-session",
        "-d",
        "-s",
        SESSION,
        "-x",
        String(size.columns),
        "-y",
        String(size.rows),
        ...setEnv,
        ...command,
      ],
      env,
    );
    return screen;
  }

  /** Types `text` literally (no key names), then Enter. */
  typeLine(text: string): void {
    this.tmux(["send-keys", "-t", SESSION, "-l", text]);
    this.tmux(["send-keys", "-t", SESSION, "Enter"]);
  }

  /** The visible screen as text. */
  text(): string {
    return this.tmux(["capture-pane", "-p", "-t", SESSION]);
  }

  /** Waits (bounded) until the screen shows `pattern`; returns the screen then. */
  async waitFor(pattern: RegExp, what: string, timeoutMs = 15000): Promise<string> {
    let screen = "";
    await until(() => pattern.test((screen = this.text())), what, timeoutMs, 100).catch(
      (err: Error) => {
        throw new Error(`${err.message}; the screen shows:\n${screen}`);
      },
    );
    return screen;
  }

  /** Ends the session, its program and the private server. */
  kill(): void {
    try {
      this.tmux(["kill-server"]);
    } catch {
      // already gone: the program exited, and the server with its last session
    }
  }

  private tmux(args: string[], env: Record<string, string> = {}): string {
    return execFileSync("tmux", ["-S", this.socket, ...args], {
      encoding: "utf8",
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
  }
}
