// The edge's admission of new sockets (edge/ws/admission.ts): per-address upgrade buckets in a
// bounded table, and what counts as unauthenticated for an edge that does not parse XMPP.
import assert from "node:assert/strict";
import { Admission, type AdmissionLimits } from "../../services/edge/ws/admission.js";
import type { Connection } from "../../services/edge/ws/connection.js";

const LIMITS: AdmissionLimits = {
  maxConnectionsPerAddress: 100,
  maxUnauthenticatedConnections: 100,
  maxUnauthenticatedConnectionsPerAddress: 100,
  upgradesPerAddressPerSecond: 1,
  upgradeBurstPerAddress: 1,
  maxTrackedAddresses: 100,
  authTimeoutMs: 30000,
};

let serial = 0;
function conn(address: string, openedAtMs: number): Connection {
  return { id: `e.0.${++serial}`, address, openedAtMs } as Connection;
}

const header = (c: Connection) => ({
  k: "data" as const,
  c: c.id,
  d: `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" from="localhost" id="s" version="1.0"/>`,
});

describe("edge admission", () => {
  it("keeps upgrade buckets for at most maxTrackedAddresses addresses, forgetting the least recent", () => {
    const admission = new Admission({ ...LIMITS, maxTrackedAddresses: 2 });
    assert.equal(admission.refusal("a", 0), undefined);
    assert.equal(admission.refusal("a", 0), "upgrade-rate");
    admission.refusal("b", 0);
    assert.equal(admission.refusal("a", 0), "upgrade-rate"); // a is now the most recent
    admission.refusal("c", 0); // forgets b, not a
    assert.equal(admission.refusal("a", 0), "upgrade-rate");
    admission.refusal("b", 0); // forgets c
    admission.refusal("d", 0); // forgets a
    assert.equal(admission.refusal("a", 0), undefined, "a forgotten: a fresh bucket");
  });

  it("counts a connection as authenticated after the session's second stream header", () => {
    const admission = new Admission({ ...LIMITS, maxUnauthenticatedConnectionsPerAddress: 1 });
    const a = conn("x", 0);
    admission.opened(a);
    assert.equal(admission.refusal("x", 0), "address-unauthenticated");
    const lookup = (id: string) => (id === a.id ? a : undefined);
    admission.sawSessionBatch([header(a), { k: "data", c: a.id, d: "<stream:features/>" }], lookup);
    assert.equal(admission.unauthenticatedCount(0), 1, "the first header is the stream's start");
    admission.sawSessionBatch([header(conn("x", 0))], lookup); // unknown connection: ignored
    admission.sawSessionBatch([header(a)], lookup);
    assert.equal(admission.unauthenticatedCount(0), 0);
    assert.equal(admission.refusal("x", 1000), undefined);
    admission.closed(a);
    assert.equal(admission.unauthenticatedCount(0), 0);
  });

  it("counts a connection as authenticated at the session's SASL2 <success/> (no restart)", () => {
    const admission = new Admission(LIMITS);
    const a = conn("x", 0);
    admission.opened(a);
    const lookup = (id: string) => (id === a.id ? a : undefined);
    admission.sawSessionBatch([header(a), { k: "data", c: a.id, d: "<stream:features/>" }], lookup);
    // A legacy <success/> asks for a restart: not yet.
    admission.sawSessionBatch(
      [{ k: "data", c: a.id, d: '<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/>' }],
      lookup,
    );
    assert.equal(admission.unauthenticatedCount(0), 1);
    admission.sawSessionBatch(
      [
        {
          k: "data",
          c: a.id,
          d: '<success xmlns="urn:xmpp:sasl:2"><authorization-identifier>a@localhost</authorization-identifier></success>',
        },
      ],
      lookup,
    );
    assert.equal(admission.unauthenticatedCount(0), 0);
  });

  it("counts a connection open for authTimeoutMs as authenticated, oldest first", () => {
    const admission = new Admission({
      ...LIMITS,
      maxUnauthenticatedConnections: 2,
      upgradeBurstPerAddress: 10,
    });
    const old = conn("p", 0);
    admission.opened(old);
    admission.opened(conn("q", 20000));
    assert.equal(admission.refusal("r", 29999), "unauthenticated-connections");
    assert.equal(admission.unauthenticatedCount(30000), 1);
    assert.equal(admission.refusal("r", 30000), undefined);
    admission.closed(old);
    assert.equal(admission.unauthenticatedCount(30000), 1);
  });
});
