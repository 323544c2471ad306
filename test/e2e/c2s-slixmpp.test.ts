// A TCP client no one here wrote: a slixmpp bot (Debian's python3-slixmpp) logs in with
// SCRAM-SHA-256 over STARTTLS and over direct TLS (XEP-0368), verifying the edge's certificate,
// and chats with an @xmpp/client WebSocket user. The package is installed when missing, as
// .ci/run installs redis-server: this test never skips. With channel binding on (session
// setting channelBinding), the bot logs in with SCRAM-SHA-256-PLUS bound to tls-unique, the only
// type slixmpp 1.8.3 knows, over TLS 1.2 (tls-unique is not defined for TLS 1.3; the other
// types are tested with a raw TLS client in c2s-channel-binding.test.ts).
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Mesh, type EdgeProcess } from "../helpers/cluster.js";
import { ensureDebianPackages } from "../helpers/debian-packages.js";
import { freePort } from "../helpers/redis-server.js";
import { makeCert, type TestCert } from "../helpers/tls-cert.js";
import { TestUser, isMessageFrom, loginAs, xml } from "../helpers/xmpp-client.js";

/** Debian's interpreter, the one python3-slixmpp installs into (not a pyenv shim). */
const PYTHON = "/usr/bin/python3";
const BOT = fileURLToPath(new URL("../../../test/e2e/slixmpp/chat_bot.py", import.meta.url));

function slixmppVersion(): string | undefined {
  try {
    return execFileSync(PYTHON, ["-c", "import slixmpp; print(slixmpp.__version__)"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return undefined;
  }
}

/** Installs python3-slixmpp from Debian's packages when it is missing (as .ci/run does). */
function ensureSlixmpp(): string {
  ensureDebianPackages(["python3-slixmpp"], () => slixmppVersion() !== undefined);
  return slixmppVersion() ?? "";
}

interface BotRun {
  code: number | null;
  lines: string[];
}

for (const plus of [false, true])
  describe(`e2e: slixmpp over TCP c2s${plus ? ", SCRAM-SHA-256-PLUS (tls-unique, TLS 1.2)" : ""}`, function () {
    this.timeout(60000);
    let mesh: Mesh;
    let edge: EdgeProcess;
    let cert: TestCert;
    let c2sPort: number;
    let c2sTlsPort: number;
    const users: TestUser[] = [];

    before(async function () {
      this.timeout(300000); // an apt-get install on a machine without the package
      const version = ensureSlixmpp();
      assert.match(version, /^\d+\.\d+/);
      cert = makeCert(["localhost"]);
      mesh = await Mesh.start({ shardCount: 4 });
      await mesh.session("s1", "", plus ? { MEGAPHONE_CHANNEL_BINDING: "true" } : {});
      c2sPort = await freePort();
      c2sTlsPort = await freePort();
      edge = await mesh.edge("e1", "", {
        MEGAPHONE_C2S_PORT: String(c2sPort),
        MEGAPHONE_C2S_TLS_PORT: String(c2sTlsPort),
        MEGAPHONE_TLS_CERT: cert.certFile,
        MEGAPHONE_TLS_KEY: cert.keyFile,
      });
      for (const name of ["bot", "dave"]) await mesh.addUser(`${name}@localhost`, `${name}-pw`);
    });

    after(async () => {
      for (const user of users) await user.stop();
      await mesh?.stop();
    });

    /** Runs the bot until it exits. */
    function runBot(port: number, mode: "starttls" | "direct", peer: string): Promise<BotRun> {
      const child = spawn(
        PYTHON,
        [
          BOT,
          "bot@localhost",
          "bot-pw",
          String(port),
          mode,
          cert.certFile,
          peer,
          plus ? "plus" : "",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let output = "";
      child.stdout.on("data", (b: Buffer) => (output += b.toString()));
      child.stderr.on("data", (b: Buffer) => (output += b.toString()));
      return new Promise((resolve) =>
        child.on("close", (code) => resolve({ code, lines: output.split("\n").filter(Boolean) })),
      );
    }

    for (const mode of ["starttls", "direct"] as const) {
      it(`logs in with SCRAM-SHA-256${plus ? "-PLUS" : ""} over ${mode === "direct" ? "direct TLS" : "STARTTLS"} and chats with a WebSocket user`, async () => {
        const dave = await loginAs(users, edge.url, "dave", { resource: mode });
        const run = runBot(mode === "direct" ? c2sTlsPort : c2sPort, mode, dave.jid);
        const hello = await dave.waitFor(
          isMessageFrom("bot@localhost", "hello from slixmpp"),
          "the bot's message",
          20000,
        );
        await dave.send(
          xml("message", { to: hello.attrs.from, type: "chat" }, xml("body", {}, "hi bot")),
        );
        const { code, lines } = await run;
        const output = lines.join("\n");
        assert.equal(code, 0, output);
        assert.ok(lines.includes(`MECHANISM SCRAM-SHA-256${plus ? "-PLUS" : ""}`), output);
        assert.ok(
          lines.some((l) => (plus ? /^TLS TLSv1\.2$/ : /^TLS TLSv1\.[23]$/).test(l)),
          output,
        );
        assert.ok(lines.includes("RECEIVED hi bot"), output);
      });
    }
  });
