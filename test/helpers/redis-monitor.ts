// MONITOR on a socket of its own, read line by line. ioredis's monitor() puts its connection in
// monitor mode only in a promise continuation after MONITOR's +OK, so when the first monitored
// commands come in the same read as the +OK (a busy machine) it has no command to match them
// with and fails with "Command queue state error" (ioredis issue 1981). Reading the lines here
// has no such window.
import { connect } from "node:net";

export interface MonitoredCommand {
  /** The command and its arguments, as MONITOR prints them (escaped, without the quotes). */
  args: string[];
  /** The client's address, or "lua" for a command a script ran. */
  source: string;
}

export interface RedisMonitor {
  stop(): void;
}

/** "+1700000000.123456 [1 127.0.0.1:5000] \"set\" \"k\" \"v\"" → its source and arguments. */
export function parseMonitorLine(line: string): MonitoredCommand | undefined {
  const head = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] /.exec(line);
  if (!head) return undefined;
  const args = [...line.slice(head[0].length).matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]);
  return { args, source: head[1] };
}

/** Starts monitoring the server at `url` (no password); resolves once MONITOR is on. */
export async function monitorRedis(
  url: string,
  onCommand: (command: MonitoredCommand) => void,
): Promise<RedisMonitor> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.setEncoding("utf8");
  let buffer = "";
  let monitoring = false;
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.once("close", () => {
      if (!monitoring) reject(new Error("MONITOR: the connection closed before +OK"));
    });
    socket.once("connect", () => socket.write("MONITOR\r\n"));
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf("\r\n"); end >= 0; end = buffer.indexOf("\r\n")) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (monitoring) {
          const command = parseMonitorLine(line);
          if (command) onCommand(command);
        } else if (line === "+OK") {
          monitoring = true;
          resolve();
        } else {
          reject(new Error(`MONITOR refused: ${line}`));
          socket.destroy();
          return;
        }
      }
    });
  });
  socket.on("error", () => undefined); // stopping destroys it; nothing to report after
  return { stop: () => socket.destroy() };
}
