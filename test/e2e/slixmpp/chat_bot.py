"""A slixmpp bot for test/e2e/c2s-slixmpp.test.ts: logs in over TCP c2s (STARTTLS or direct
TLS), says what it negotiated, sends one message to PEER, waits for one message back, and exits
0 once it has it (1 on failure or after TIMEOUT seconds). Each line it prints is one fact.

With "plus" it logs in with SCRAM-SHA-256-PLUS over TLS 1.2: slixmpp 1.8.3 binds only to
tls-unique (RFC 5929 §3), which is defined for TLS 1.2 and below, not for TLS 1.3."""
import asyncio
import ssl
import sys

import slixmpp

TIMEOUT = 20


class ChatBot(slixmpp.ClientXMPP):
    def __init__(self, jid, password, peer, mechanism):
        super().__init__(jid, password, sasl_mech=mechanism)
        self.peer = peer
        self.done = asyncio.get_event_loop().create_future()
        self.add_event_handler("auth_success", self.on_auth)
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        for failure in ("failed_auth", "connection_failed", "stream_error"):
            self.add_event_handler(failure, self.on_failure)

    def on_auth(self, _):
        print("MECHANISM", self["feature_mechanisms"].mech.name, flush=True)

    async def on_start(self, _):
        ssl_object = self.transport.get_extra_info("ssl_object")
        print("TLS", ssl_object.version() if ssl_object else "none", flush=True)
        print("BOUND", self.boundjid.full, flush=True)
        self.send_message(mto=self.peer, mbody="hello from slixmpp", mtype="chat")

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            print("RECEIVED", msg["body"], flush=True)
            if not self.done.done():
                self.done.set_result(True)

    def on_failure(self, event):
        print("FAILED", event, flush=True)
        if not self.done.done():
            self.done.set_result(False)


async def main():
    jid, password, port, mode, ca_file, peer = sys.argv[1:7]
    plus = sys.argv[7:8] == ["plus"]
    bot = ChatBot(jid, password, peer, "SCRAM-SHA-256-PLUS" if plus else "SCRAM-SHA-256")
    bot.ca_certs = ca_file
    if plus:
        bot.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
    direct = mode == "direct"
    bot.connect(("127.0.0.1", int(port)), use_ssl=direct, force_starttls=not direct)
    try:
        ok = await asyncio.wait_for(bot.done, TIMEOUT)
    except asyncio.TimeoutError:
        print("FAILED timeout", flush=True)
        ok = False
    try:
        await asyncio.wait_for(bot.disconnect(), 2)
    except (asyncio.TimeoutError, TypeError):
        pass
    sys.exit(0 if ok else 1)


asyncio.run(main())
