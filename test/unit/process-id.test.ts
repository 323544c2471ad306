// Default process ids on Kubernetes: pod names of one ReplicaSet differ only at their end, and
// the pid is 1 in every container, so the id must keep what tells them apart.
import assert from "node:assert/strict";
import { MAX_PROCESS_ID_LENGTH, defaultProcessId } from "../../services/shared/process-id.js";

describe("default process ids", () => {
  it("keeps two long pod names of one ReplicaSet apart, within the id rules", () => {
    const a = defaultProcessId("e-", "megaphone-production-edge-europe-west1-7d9f8c6b5d-x7k2p", 1);
    const b = defaultProcessId("e-", "megaphone-production-edge-europe-west1-7d9f8c6b5d-xq4mz", 1);
    assert.notEqual(a, b);
    for (const id of [a, b]) {
      assert.ok(id.length <= MAX_PROCESS_ID_LENGTH, id);
      assert.match(id, /^[a-z0-9-]{1,40}$/);
      assert.ok(id.startsWith("e-megaphone-production"), id);
    }
  });

  it("uses a short host name as it is, with the pid for processes on one host", () => {
    assert.equal(
      defaultProcessId("s-", "Web-1.example", 4242),
      `s-web-1-example-${(4242).toString(36)}`,
    );
    assert.notEqual(defaultProcessId("s-", "web-1", 10), defaultProcessId("s-", "web-1", 11));
  });
});
