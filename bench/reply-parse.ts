// bench:reply-parse — what parsing Redis replies costs the services' client, side by side with a
// reference: ioredis 6's reply decoder (a dev dependency, kept for this comparison) and
// redis-parser, the parser of ioredis 5, which the services use (every Megaphone process
// parses at least one stream entry per message with it), fed the same bytes in the same run. Replies are the hot path's: a shard inbox read
// (XREADGROUP, N entries of the fields an edge writes), an edge inbox read (XREAD), and a
// script's answer. Prints µs per reply, per entry, and the ratio (docs/capacity.md).
//
//   npm run bench:reply-parse -- [--replies 200000] [--rounds 3]
import { createRequire } from "node:module";
import { fmt, option } from "./targets.js";

const require = createRequire(import.meta.url);
const REPLIES = Number(option("replies", "200000"));
const ROUNDS = Number(option("rounds", "3"));

const bulk = (value: string) => `$${Buffer.byteLength(value)}\r\n${value}\r\n`;
const array = (items: string[]) => `*${items.length}\r\n${items.join("")}`;

/** A stream read's reply: one stream, `entries` entries of a data packet's fields. */
function streamReply(stream: string, entries: number): Buffer {
  const stanza = `<message xmlns='jabber:client' to='u42@localhost' type='chat' id='m1'><body>${"x".repeat(60)}</body></message>`;
  const entry = (i: number) =>
    array([
      bulk(`1764500000000-${i}`),
      array(
        ["k", "data", "c", "e1.3.k7f2", "d", stanza, "o", `e1.3.k7f2|1764500000000-${i}|0`].map(
          bulk,
        ),
      ),
    ]);
  return Buffer.from(
    array([array([bulk(stream), array(Array.from({ length: entries }, (_, i) => entry(i)))])]),
  );
}

const REPLIES_UNDER_TEST: { name: string; bytes: Buffer; entries: number }[] = [
  { name: "XREADGROUP, 1 entry", bytes: streamReply("mp:{s3}:in", 1), entries: 1 },
  { name: "XREADGROUP, 16 entries", bytes: streamReply("mp:{s3}:in", 16), entries: 16 },
  { name: "XREAD (edge inbox), 4 entries", bytes: streamReply("mp:edge:{e1}", 4), entries: 4 },
  {
    name: "EVALSHA [1, id]",
    bytes: Buffer.from(array([":1\r\n", bulk("1764500000000-0")])),
    entries: 0,
  },
];

type Parse = (bytes: Buffer) => void;

interface ParserUnderTest {
  name: string;
  make(onReply: () => void): Parse;
}

const PARSERS: ParserUnderTest[] = [
  {
    name: "ioredis 6 Decoder (reference)",
    make(onReply) {
      const { Decoder } = require("ioredis6/built/resp/decoder.js") as {
        Decoder: new (options: Record<string, unknown>) => { write(bytes: Buffer): void };
      };
      const decoder = new Decoder({
        getTypeMapping: () => ({}),
        onReply,
        onErrorReply: () => undefined,
        onPush: () => undefined,
      });
      return (bytes) => decoder.write(bytes);
    },
  },
  {
    name: "redis-parser 3 (ioredis 5, Megaphone's)",
    make(onReply) {
      const Parser = require("redis-parser") as new (options: Record<string, unknown>) => {
        execute(bytes: Buffer): void;
      };
      const parser = new Parser({
        returnReply: onReply,
        returnError: () => undefined,
        returnBuffers: false,
        stringNumbers: false,
      });
      return (bytes) => parser.execute(bytes);
    },
  },
];

/** µs per reply for `bytes`, after a warm-up; checks that every reply was parsed. */
function measure(parser: ParserUnderTest, bytes: Buffer): number {
  let parsed = 0;
  const parse = parser.make(() => parsed++);
  for (let i = 0; i < REPLIES / 10; i++) parse(bytes);
  const start = process.hrtime.bigint();
  for (let i = 0; i < REPLIES; i++) parse(bytes);
  const us = Number(process.hrtime.bigint() - start) / 1000 / REPLIES;
  if (parsed !== REPLIES + REPLIES / 10)
    throw new Error(`${parser.name} parsed ${parsed} replies of ${REPLIES + REPLIES / 10}`);
  return us;
}

console.log(
  `bench:reply-parse, node ${process.version}: ${REPLIES} replies per figure, ${ROUNDS} rounds (µs per reply; the lowest round)\n`,
);
console.log(`| reply | ${PARSERS.map((p) => p.name).join(" | ")} | ratio | µs per entry, each |`);
console.log(`|${" --- |".repeat(PARSERS.length + 3)}`);
for (const reply of REPLIES_UNDER_TEST) {
  const best = PARSERS.map(() => Infinity);
  for (let round = 0; round < ROUNDS; round++)
    PARSERS.forEach((parser, i) => (best[i] = Math.min(best[i], measure(parser, reply.bytes))));
  const perEntry = reply.entries > 0 ? best.map((us) => fmt(us / reply.entries)).join(" / ") : "–";
  console.log(
    `| ${reply.name} | ${best.map(fmt).join(" | ")} | ${fmt(best[0] / best[1])} | ${perEntry} |`,
  );
}
