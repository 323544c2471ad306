// The ceiling bench:hop is compared with: the same closed loop (K pairs, M messages each, at most
// W in flight per pair) over two Redis Streams hops written with nothing but Node and ioredis.
// Producers XADD into an inbox stream; a relay reads it as a consumer group (batched
// XREADGROUP), XADDs each entry into an outbox stream and XACKs the batch, all in one pipeline;
// a reader XREADs the outbox and hands each message to its pair. No XMPP, no parsing, no
// state, no fencing: what two hops through Redis cost at the least on this machine.
import { performance } from "node:perf_hooks";
// The same client Megaphone's connections use (services/shared/redis/client.ts): ioredis 5,
// whose reply parser is the faster one, so the ceiling is not lowered by ioredis 6's.
import { Redis } from "ioredis";

export interface HopRound {
  latencies: number[];
  elapsedMs: number;
}

const READ_COUNT = 256;
const BLOCK_MS = 100;

type StreamReply = [string, [string, string[]][]][] | null;

export async function rawHop(
  url: string,
  pairs: number,
  messages: number,
  window: number,
): Promise<HopRound> {
  const prefix = `rawhop:${process.pid}:${Date.now()}`;
  const inbox = `${prefix}:in`;
  const outbox = `${prefix}:out`;
  const producer = new Redis(url, { enableAutoPipelining: true });
  const relayReader = new Redis(url);
  const relayWriter = new Redis(url);
  const reader = new Redis(url);
  await producer.xgroup("CREATE", inbox, "relay", "$", "MKSTREAM");
  const stop = new AbortController();

  const relay = (async () => {
    while (!stop.signal.aborted) {
      const reply = (await relayReader.xreadgroup(
        "GROUP",
        "relay",
        "r1",
        "COUNT",
        READ_COUNT,
        "BLOCK",
        BLOCK_MS,
        "STREAMS",
        inbox,
        ">",
      )) as StreamReply;
      if (!reply) continue;
      const entries = reply[0][1];
      const pipeline = relayWriter.pipeline();
      for (const [, fields] of entries) pipeline.xadd(outbox, "*", ...fields);
      pipeline.xack(inbox, "relay", ...entries.map(([id]) => id));
      await pipeline.exec();
    }
  })();

  const latencies: number[] = [];
  const sent = new Array<number>(pairs).fill(0);
  const received = new Array<number>(pairs).fill(0);
  let done = 0;
  let allDone!: () => void;
  const finished = new Promise<void>((resolve) => (allDone = resolve));
  const send = (pair: number) => {
    sent[pair]++;
    void producer.xadd(inbox, "*", "p", String(pair), "t", String(performance.now()));
  };
  const reading = (async () => {
    let last = "0-0"; // the outbox is new: everything in it is this round's
    while (!stop.signal.aborted) {
      const reply = (await reader.xread(
        "COUNT",
        READ_COUNT,
        "BLOCK",
        BLOCK_MS,
        "STREAMS",
        outbox,
        last,
      )) as StreamReply;
      if (!reply) continue;
      for (const [id, fields] of reply[0][1]) {
        last = id;
        const pair = Number(fields[1]);
        latencies.push(performance.now() - Number(fields[3]));
        received[pair]++;
        if (received[pair] === messages) {
          if (++done === pairs) allDone();
        } else if (sent[pair] < messages) send(pair);
      }
    }
  })();

  const started = performance.now();
  for (let pair = 0; pair < pairs; pair++)
    for (let w = 0; w < Math.min(window, messages); w++) send(pair);
  await finished;
  const elapsedMs = performance.now() - started;
  stop.abort();
  await Promise.all([relay, reading]);
  await producer.del(inbox, outbox);
  for (const client of [producer, relayReader, relayWriter, reader]) client.disconnect();
  latencies.sort((a, b) => a - b);
  return { latencies, elapsedMs };
}
