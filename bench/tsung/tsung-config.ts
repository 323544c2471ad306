// The tsung scenario of bench:tsung: users bench1 … benchN (password "bench<n>", tsung's
// convention) connect over TCP c2s (plaintext, or upgraded with STARTTLS), log in with SASL PLAIN (tsung's jabber plugin has no
// SCRAM), bind a resource, open the legacy session, send initial presence, fetch the roster,
// then send a stamped chat message every `thinkSeconds` to a random online user for
// `chatSeconds`, wait until the last users have arrived and sent theirs, and close. The
// session is bidirectional, so tsung reads the stamps of the messages it receives and samples
// their delivery time (xmpp_msg_latency). A refused login ends that user (tsung's "match").

export interface TsungScenario {
  /**
   * The edges' ports on 127.0.0.1 (tsung spreads new users over them): their c2s ports, or
   * with `bosh` their HTTP ports (path /http-bind).
   */
  ports: number[];
  /** XMPP over BOSH (XEP-0206, tsung's ts_bosh) instead of TCP c2s. */
  bosh: boolean;
  users: number;
  /** New users per second. */
  arrivalRate: number;
  chatSeconds: number;
  thinkSeconds: number;
  /** Body bytes of each message (the stamp is part of it). */
  messageBytes: number;
  /** tsung writes every packet sent and received to tsung.dump (to count what arrived). */
  dumpTraffic: boolean;
  /** Upgrade each connection with STARTTLS before logging in (else plaintext c2s). */
  starttls: boolean;
}

/** Seconds until every user has arrived. */
export function arrivalSeconds(s: TsungScenario): number {
  return Math.ceil(s.users / s.arrivalRate);
}

/** Messages each user sends. */
export function messagesPerUser(s: TsungScenario): number {
  return Math.max(1, Math.floor(s.chatSeconds / s.thinkSeconds));
}

// tsung's "starttls" upgrades the socket once the edge answers <proceed/> (certificate not
// verified), then a new stream is opened on it.
const STARTTLS = `
      <request><jabber type="starttls" ack="bidi_ack"/></request>
      <request><jabber type="connect" ack="local"/></request>`;

export function tsungConfig(s: TsungScenario): string {
  const arrival = arrivalSeconds(s);
  // Early users stay on until the last ones have sent their messages: a message to a user
  // who has left would be stored offline and never sampled.
  const linger = arrival + 5;
  const cap = arrival + s.chatSeconds + linger + 60;
  const servers = s.ports
    .map(
      (port) => `    <server host="127.0.0.1" port="${port}" type="${s.bosh ? "bosh" : "tcp"}"/>`,
    )
    .join("\n");
  const boshPath = s.bosh ? `\n    <option name="bosh_path" value="/http-bind"/>` : "";
  return `<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd">
<tsung loglevel="notice" dumptraffic="${s.dumpTraffic}" version="1.0">
  <clients>
    <client host="localhost" use_controller_vm="true" maxusers="${s.users + 100}"/>
  </clients>
  <servers>
${servers}
  </servers>
  <load duration="${cap}" unit="second">
    <arrivalphase phase="1" duration="${arrival + 5}" unit="second">
      <users maxnumber="${s.users}" arrivalrate="${s.arrivalRate}" unit="second"/>
    </arrivalphase>
  </load>
  <options>
    <option type="ts_jabber" name="global_number" value="${s.users}"/>
    <option type="ts_jabber" name="userid_max" value="${s.users}"/>
    <option type="ts_jabber" name="domain" value="localhost"/>
    <option type="ts_jabber" name="username" value="bench"/>
    <option type="ts_jabber" name="passwd" value="bench"/>${boshPath}
  </options>
  <sessions>
    <session probability="100" name="c2s-chat" type="ts_jabber" bidi="true">
      <request><jabber type="connect" ack="local"/></request>${s.starttls && !s.bosh ? STARTTLS : ""}
      <transaction name="login">
        <request>
          <match do="abort" when="match">&lt;failure</match>
          <jabber type="auth_sasl" ack="local"/>
        </request>
        <request><jabber type="connect" ack="local"/></request>
        <request><jabber type="auth_sasl_bind" ack="local"/></request>
        <request><jabber type="auth_sasl_session" ack="local"/></request>
      </transaction>
      <request><jabber type="presence:initial" ack="no_ack"/></request>
      <transaction name="roster">
        <request><jabber type="iq:roster:get" ack="local"/></request>
      </transaction>
      <for from="1" to="${messagesPerUser(s)}" incr="1" var="i">
        <transaction name="chat">
          <request><jabber type="chat" ack="no_ack" size="${s.messageBytes}" destination="online" stamped="true"/></request>
        </transaction>
        <thinktime value="${s.thinkSeconds}" random="false"/>
      </for>
      <thinktime value="${linger}" random="false"/>
      <transaction name="close">
        <request><jabber type="close" ack="local"/></request>
      </transaction>
    </session>
  </sessions>
</tsung>
`;
}
