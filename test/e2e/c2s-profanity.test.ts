// A terminal client no one here wrote: Debian's profanity (on libstrophe), driven in a detached
// tmux session the way a person would type at it, logs in as alice over TCP c2s with STARTTLS
// and chats with bob, an @xmpp/client WebSocket user. The edge's certificate is self-signed
// for localhost, so profanity asks whether to trust it; the test answers `/tls allow` (accept
// for this connection), the answer a person gives the first time. profanity runs with its own
// HOME and XDG directories: no user's configuration or tmux is touched. Packages are installed
// when missing, as .ci/run does: this test never skips.
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Mesh, type EdgeProcess } from "../helpers/cluster.js";
import { ensureDebianPackages, runs } from "../helpers/debian-packages.js";
import { freePort } from "../helpers/redis-server.js";
import { TmuxScreen } from "../helpers/tmux-screen.js";
import { makeCert } from "../helpers/tls-cert.js";
import { TestUser, isMessageFrom, loginAs, xml } from "../helpers/xmpp-client.js";

describe("e2e: profanity (in tmux) over TCP c2s with STARTTLS", function () {
  this.timeout(60000);
  let mesh: Mesh;
  let edge: EdgeProcess;
  let c2sPort: number;
  let home: string;
  let profanity: TmuxScreen | undefined;
  const users: TestUser[] = [];

  before(async function () {
    this.timeout(300000); // an apt-get install on a machine without the packages
    ensureDebianPackages(
      ["profanity", "tmux"],
      () => runs("profanity", ["--version"]) && runs("tmux", ["-V"]),
    );
    const cert = makeCert(["localhost"]);
    mesh = await Mesh.start({ shardCount: 4 });
    await mesh.session("s1", "");
    c2sPort = await freePort();
    edge = await mesh.edge("e1", "", {
      MEGAPHONE_C2S_PORT: String(c2sPort),
      MEGAPHONE_TLS_CERT: cert.certFile,
      MEGAPHONE_TLS_KEY: cert.keyFile,
    });
    for (const name of ["alice", "bob"]) await mesh.addUser(`${name}@localhost`, `${name}-pw`);
    home = mkdtempSync(join(tmpdir(), "megaphone-profanity-"));
  });

  after(async () => {
    profanity?.kill();
    for (const user of users) await user.stop();
    await mesh?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it("logs in, accepts the certificate, sends bob a message and shows bob's reply", async () => {
    const bob = await loginAs(users, edge.url, "bob", { resource: "ws" });
    await bob.send(xml("presence")); // available: a message to the bare JID reaches this resource
    const env = {
      HOME: home,
      XDG_CONFIG_HOME: join(home, "config"),
      XDG_DATA_HOME: join(home, "data"),
    };
    for (const dir of [env.XDG_CONFIG_HOME, env.XDG_DATA_HOME]) mkdirSync(dir);
    profanity = TmuxScreen.start(home, ["profanity"], env);
    await profanity.waitFor(/Type '\/help' to show complete help/, "profanity's welcome");

    profanity.typeLine(`/connect alice@localhost server 127.0.0.1 port ${c2sPort}`);
    await profanity.waitFor(/Enter password:/, "the password prompt");
    profanity.typeLine("alice-pw");
    // libstrophe cannot verify a self-signed certificate: profanity shows it and asks.
    const certificate = await profanity.waitFor(/Use '\/tls allow'/, "the certificate question");
    assert.match(certificate, /Common name\s*: localhost/);
    profanity.typeLine("/tls allow");
    await profanity.waitFor(/alice@localhost\/\S+ logged in successfully/, "the login");

    profanity.typeLine("/msg bob@localhost hello from profanity");
    const hello = await bob.waitFor(
      isMessageFrom("alice@localhost", "hello from profanity"),
      "profanity's message",
      15000,
    );
    await bob.send(
      xml("message", { to: hello.attrs.from, type: "chat" }, xml("body", {}, "hi profanity")),
    );
    const chat = await profanity.waitFor(/hi profanity/, "bob's reply");
    assert.match(chat, /bob@localhost.*hi profanity/);
    // Exactly once: no second copy arrived before a round trip that follows the reply.
    await bob.expectNone(isMessageFrom("alice@localhost", "hello from profanity"), () =>
      bob.ping(),
    );
  });
});
