// bench:tsung reads tsung's text statistics; the lines below are from a real tsung 1.7 run
// against the all-in-one (two of its 10-second dumps, abridged).
import assert from "node:assert/strict";
import { readTsungLog, stampsReceived, tsungErrors } from "../../bench/tsung/tsung-log.js";

const LOG = `# stats: dump at 1795993356
stats: users 19 19
stats: {cpu,"tsung_controller@vm"} 1 45.68587285989121 0 45.68587285989121 45.68587285989121 0 0
stats: users_count 19 19
stats: request 114 4.06567543859649 4.661982942489536 29.358 0.388 0 0
stats: connect 19 1.7514736842105263 1.5226555877089092 6.115 0.393 0 0
stats: tr_login 19 16.343210526315787 8.78919274527379 30.018 4.718 0 0
stats: xmpp_msg_latency 151 2.9190529801324527 4.460012000381918 39.678 0.494 0 0
stats: connected 19 19
# stats: dump at 1795993365
stats: users 0 19
stats: users_count 0 19
stats: finish_users_count 19 19
stats: request 19 8.795473684210526 26.323550253214666 119.591 0.388 4.06567543859649 114
stats: connect 0 0 0 6.115 0.393 1.7514736842105263 19
stats: tr_login 0 0 0 30.018 4.718 16.343210526315787 19
stats: xmpp_msg_latency 38 3.1490789473684213 4.616960314579159 39.678 0.494 2.9190529801324527 151
stats: error_connect_econnrefused 2 2
stats: connected -19 0
EndMonitor:{1795,993365,460119}
`;

describe("bench: tsung's statistics", () => {
  const stats = readTsungLog(LOG);

  it("adds a sample's last interval to what came before it, weighting the means", () => {
    const latency = stats.samples.get("xmpp_msg_latency");
    assert.equal(latency?.count, 189);
    assert.ok(
      Math.abs(latency.mean - (151 * 2.9190529801324527 + 38 * 3.1490789473684213) / 189) < 1e-9,
    );
    assert.equal(latency.max, 39.678);
    assert.deepEqual(stats.samples.get("connect"), {
      count: 19,
      mean: 1.7514736842105263,
      max: 6.115,
      min: 0.393,
    });
    assert.equal(stats.samples.get("request")?.count, 133);
  });

  it("keeps counters' totals and gauges' peaks", () => {
    assert.equal(stats.totals.get("finish_users_count"), 19);
    assert.equal(stats.totals.get("connected"), 0);
    assert.equal(stats.peaks.get("connected"), 19);
    assert.equal(stats.peaks.get("users"), 19);
  });

  it("lists the errors tsung counted", () => {
    assert.deepEqual([...tsungErrors(stats)], [["error_connect_econnrefused", 2]]);
    assert.equal(tsungErrors(readTsungLog("stats: users 1 1\n")).size, 0);
  });

  it("counts every stamped message received in the traffic dump, several to a packet too", () => {
    const dump = [
      "Send:1795993376.340223:<0.178.0>:<message id='7' to='bench1@localhost' type='chat'><body>@@@119902541,1795;993376;340195@@@</body></message>",
      `Recv:1795993376.344117:<0.178.0>:<message xmlns="jabber:client" id="7"><body>@@@119902541,1795;993376;340195@@@xyz</body></message><message id="9"><body>@@@119902541,1795;993376;350001@@@</body></message>`,
      `Recv:1795993376.351:<0.178.0>:<iq type="result" id="6"/>`,
    ].join("\n");
    assert.equal(stampsReceived(dump), 2);
  });
});
