// /readyz tells Kubernetes whether a process can serve: 200 only while it is connected to
// Redis (and, for a session, consuming its shards). /healthz stays 200 while the process runs.
import assert from "node:assert/strict";
import { until } from "../helpers/poll.js";
import { Mesh, type EdgeProcess, type SessionProcess } from "../helpers/cluster.js";

async function status(url: string): Promise<number> {
  try {
    return (await fetch(url)).status;
  } catch {
    return 0;
  }
}

/** Until `url` answers `expected` (bounded); there is no event to await across processes. */
function answers(url: string, expected: number): Promise<void> {
  return until(async () => (await status(url)) === expected, `${url} → ${expected}`, 15000, 50);
}

describe("e2e: readiness follows Redis", function () {
  this.timeout(40000);
  let mesh: Mesh;
  let edge: EdgeProcess;
  let session: SessionProcess;

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({ shardCount: 4 });
    session = await mesh.session("s1", "");
    edge = await mesh.edge("e1", "");
  });

  after(async () => mesh?.stop());

  it("turns /readyz to 503 when Redis goes away, keeps /healthz at 200, and recovers", async () => {
    const edgeReady = `http://127.0.0.1:${edge.port}/readyz`;
    const sessionReady = `http://127.0.0.1:${session.httpPort}/readyz`;
    assert.equal(await status(edgeReady), 200);
    assert.equal(await status(sessionReady), 200);

    await mesh.pauseRedis();
    await answers(edgeReady, 503);
    await answers(sessionReady, 503);
    assert.equal(await status(`http://127.0.0.1:${edge.port}/healthz`), 200);
    assert.equal(await status(`http://127.0.0.1:${session.httpPort}/healthz`), 200);

    await mesh.resumeRedis();
    await answers(edgeReady, 200);
    await answers(sessionReady, 200);
  });
});
