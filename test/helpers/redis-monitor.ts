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
  /**
   * Stops once MONITOR has shown everything Redis ran before this call: `client` sends an ECHO
   * marker and Redis prints commands in the order it runs them. A command's effect can be seen
   * through another connection before this process has read its line from the monitor.
   */
  stopWhenCaughtUp(client: { echo(message: string): Promise<unknown> }): Promise<void>;
}

let markerSerial = 0;

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
  const awaitedMarkers = new Map<string, () => void>();
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
          const marker = command?.args[0]?.toLowerCase() === "echo" ? command.args[1] : undefined;
          const markerSeen = marker === undefined ? undefined : awaitedMarkers.get(marker);
          if (markerSeen) markerSeen();
          else if (command) onCommand(command);
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
  const stop = () => void socket.destroy();
  return {
    stop,
    async stopWhenCaughtUp(client) {
      const marker = `megaphone-monitor-caught-up-${++markerSerial}`;
      const seen = new Promise<void>((resolve, reject) => {
        awaitedMarkers.set(marker, resolve);
        socket.once("close", () => reject(new Error("MONITOR closed before its marker came")));
      });
      await client.echo(marker);
      await seen;
      awaitedMarkers.delete(marker);
      stop();
    },
  };
}
