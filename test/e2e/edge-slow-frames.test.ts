// A slow-partial-frame attack on a real edge process (issue 6, item 7): hundreds of sockets
// from many addresses each start a message just under the size limit and never finish it, so
// uWS buffers every one of them. The edge's caps on unauthenticated connections bound what
// that costs it, and users already logged in keep chatting through the same edge.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { connect as tcpConnect, type Socket } from "node:net";
import { Mesh, type EdgeProcess } from "../helpers/cluster.js";
import { RawClient } from "../helpers/raw-client.js";
import { report } from "../helpers/report.js";
import { Running } from "../helpers/running.js";

const MAX_STANZA_BYTES = 256 * 1024;
const ATTACK_SOCKETS = 300;
const ATTACK_ADDRESSES = 100;
/** Each attacker announces a message this long (valid before and after the fix)... */
const ANNOUNCED_BYTES = MAX_STANZA_BYTES + 512;
/** ...and sends all of it but the last byte, in chunks, slowly. */
const CHUNK_BYTES = 16 * 1024;
const CHUNK_INTERVAL_MS = 20;
const MAX_UNAUTHENTICATED = 50;
/**
 * RSS growth allowed: MAX_UNAUTHENTICATED buffers of ANNOUNCED_BYTES is 13 MB; every attack
 * socket buffered (no cap) would be 77 MB.
 */
const RSS_GROWTH_BOUND_BYTES = 40 * 1024 * 1024;

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** An attack socket: true once upgraded, false when refused. */
function attackSocket(
  port: number,
  localAddress: string,
): Promise<{ socket: Socket; upgraded: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: "127.0.0.1", port, localAddress }, () =>
      socket.write(
        `GET /xmpp-websocket HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n`,
      ),
    );
    socket.on("error", () => undefined);
    socket.once("data", (head: Buffer) =>
      resolve({ socket, upgraded: head.toString("latin1").startsWith("HTTP/1.1 101") }),
    );
    socket.once("close", () => reject(new Error("closed before answering the upgrade")));
  });
}

/** A masked text frame header announcing `length` bytes (mask 0: the payload goes as is). */
function frameHeader(length: number): Buffer {
  const header = Buffer.alloc(2 + 8 + 4);
  header[0] = 0x81;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(BigInt(length), 2);
  return header;
}

async function trickle(socket: Socket): Promise<void> {
  socket.write(frameHeader(ANNOUNCED_BYTES));
  const chunk = Buffer.alloc(CHUNK_BYTES, "x");
  for (let sent = 0; sent < ANNOUNCED_BYTES - 1 && !socket.destroyed;) {
    const bytes = Math.min(CHUNK_BYTES, ANNOUNCED_BYTES - 1 - sent);
    await new Promise<void>((resolve) => socket.write(chunk.subarray(0, bytes), () => resolve()));
    sent += bytes;
    await new Promise((resolve) => setTimeout(resolve, CHUNK_INTERVAL_MS));
  }
}

async function unauthenticated(edge: EdgeProcess): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${edge.port}/metrics`)).text();
  const name = "megaphone_edge_unauthenticated_connections ";
  const line = text.split("\n").find((l) => l.startsWith(name));
  return line === undefined ? NaN : Number(line.slice(name.length));
}

describe("e2e: slow partial frames from many sockets", function () {
  this.timeout(60000);
  let mesh: Mesh;
  let edge: EdgeProcess;
  const sockets: Socket[] = [];
  const running = new Running();

  before(async function () {
    mesh = await Mesh.start({ shardCount: 4 });
    await mesh.session("s1", "");
    edge = await mesh.edge("e1", "", {
      MEGAPHONE_MAX_STANZA_BYTES: String(MAX_STANZA_BYTES),
      MEGAPHONE_MAX_UNAUTHENTICATED_CONNECTIONS: String(MAX_UNAUTHENTICATED),
    });
    await mesh.addUser("alice@localhost", "alice-pw");
    await mesh.addUser("bob@localhost", "bob-pw");
  });

  afterEach(() => running.stopAll());

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await mesh?.stop();
  });

  it("keeps the edge's RSS bounded while logged-in users keep chatting", async () => {
    const alice = await RawClient.connect(edge.url);
    const bob = await RawClient.connect(edge.url);
    await alice.login("alice", "alice-pw", "a");
    await bob.login("bob", "bob-pw", "b");
    let serial = 0;
    const roundTrip = async (): Promise<number> => {
      const id = `m${++serial}`;
      const started = Date.now();
      alice.send(
        `<message xmlns="jabber:client" to="bob@localhost/b" type="chat" id="${id}"><body>hi</body></message>`,
      );
      await bob.waitFrame((f) => f.includes(`id="${id}"`), `message ${id}`, 5000);
      return Date.now() - started;
    };
    await roundTrip();
    // The session restarted both streams after SASL: the edge no longer counts them as
    // unauthenticated, so the attack below cannot crowd them out of anything.
    assert.equal(await unauthenticated(edge), 0);
    const pid = edge.process.pid as number;
    const rssBefore = rssBytes(pid);

    const attempts = await Promise.all(
      Array.from({ length: ATTACK_SOCKETS }, (_, i) =>
        attackSocket(edge.port, `127.0.1.${1 + (i % ATTACK_ADDRESSES)}`),
      ),
    );
    for (const { socket } of attempts) sockets.push(socket);
    const upgraded = attempts.filter((a) => a.upgraded);
    let maxRss = rssBefore;
    const sampling = setInterval(() => (maxRss = Math.max(maxRss, rssBytes(pid))), 20);
    running.add({ stop: () => clearInterval(sampling) });
    const trickling = Promise.all(upgraded.map(({ socket }) => trickle(socket)));
    const latencies: number[] = [];
    let attackDone = false;
    void trickling.then(() => (attackDone = true));
    while (!attackDone) latencies.push(await roundTrip());
    // uWS has read what the kernel took: give it a moment, still sampling.
    await new Promise((resolve) => setTimeout(resolve, 500));
    clearInterval(sampling);
    latencies.push(await roundTrip());

    const growth = maxRss - rssBefore;
    const mb = (bytes: number) => (bytes / (1024 * 1024)).toFixed(1);
    report(
      `${upgraded.length} of ${ATTACK_SOCKETS} attack sockets upgraded, each buffering ` +
        `${ANNOUNCED_BYTES - 1} bytes of one message`,
    );
    report(
      `edge RSS ${mb(rssBefore)} MB before, at most ${mb(maxRss)} MB during: +${mb(growth)} MB`,
    );
    report(
      `${latencies.length} chat round trips during the attack, slowest ${Math.max(...latencies)} ms`,
    );
    assert.ok(growth < RSS_GROWTH_BOUND_BYTES, `RSS grew by ${mb(growth)} MB`);
    assert.ok(upgraded.length <= MAX_UNAUTHENTICATED, `${upgraded.length} upgraded`);
    assert.ok(latencies.length >= 2);
  });
});
