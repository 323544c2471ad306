// A raw BOSH (XEP-0124 / XEP-0206) client over fetch for end-to-end tests: every request is
// written by hand, so tests can send any rid, sid or body and look at the exact answer.
import { parse, type Element } from "ltx";

export const NS_HTTPBIND = "http://jabber.org/protocol/httpbind";
export const NS_XBOSH = "urn:xmpp:xbosh";

export interface BoshAnswer {
  status: number;
  text: string;
  /** The parsed <body/> (undefined when the answer is not XML). */
  body?: Element;
}

/** POSTs `text` to `url`; the answer parsed. */
export async function postBody(url: string, text: string): Promise<BoshAnswer> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "text/xml; charset=utf-8" },
    body: text,
  });
  const answer: BoshAnswer = { status: res.status, text: await res.text() };
  if (answer.text.startsWith("<")) answer.body = parse(answer.text);
  return answer;
}

export class BoshSession {
  /** The rid of the last request sent. */
  rid: number;

  private constructor(
    /** The /http-bind URL requests go to (tests may point it at another edge). */
    public url: string,
    readonly sid: string,
    readonly creation: Element,
    firstRid: number,
  ) {
    this.rid = firstRid;
  }

  /** Creates a session (XEP-0206 §3); `attrs` add to or override the creation attributes. */
  static async create(url: string, attrs: Record<string, string> = {}): Promise<BoshSession> {
    const rid = 1000 + Math.floor(Math.random() * 1e6);
    const answer = await postBody(
      url,
      bodyXml({
        rid: String(rid),
        to: "localhost",
        wait: "10",
        hold: "1",
        ver: "1.6",
        "xmlns:xmpp": NS_XBOSH,
        "xmpp:version": "1.0",
        ...attrs,
      }),
    );
    if (!answer.body?.attrs.sid)
      throw new Error(`no session created: ${answer.status} ${answer.text}`);
    return new BoshSession(url, answer.body.attrs.sid, answer.body, rid);
  }

  /** Sends the next rid with `payload` (serialized) and `attrs`; the answer. */
  send(payload = "", attrs: Record<string, string> = {}): Promise<BoshAnswer> {
    return this.sendRid(++this.rid, payload, attrs);
  }

  /** Sends a request with rid `rid` (any: repeated, out of window). */
  sendRid(rid: number, payload = "", attrs: Record<string, string> = {}): Promise<BoshAnswer> {
    return postBody(this.url, bodyXml({ rid: String(rid), sid: this.sid, ...attrs }, payload));
  }

  /** XEP-0206 §5: restarts the stream; the answer holds the new features. */
  restart(): Promise<BoshAnswer> {
    return this.send("", { "xmlns:xmpp": NS_XBOSH, "xmpp:restart": "true", to: "localhost" });
  }

  /**
   * Logs in with PLAIN, restarts and binds `resource`; returns the full JID. Every answer is
   * awaited before the next request (hold=1: one request at a time is answered at once when
   * it carries something to answer).
   */
  async login(user: string, password: string, resource = "bosh"): Promise<string> {
    const plain = Buffer.from(`\0${user}\0${password}`).toString("base64");
    const auth = await this.send(
      `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${plain}</auth>`,
    );
    if (!auth.body?.getChild("success")) throw new Error(`login failed: ${auth.text}`);
    const restarted = await this.restart();
    const features = restarted.body?.getChild("features", "http://etherx.jabber.org/streams");
    if (!features?.getChild("bind", "urn:ietf:params:xml:ns:xmpp-bind"))
      throw new Error(`no features after restart: ${restarted.text}`);
    const bound = await this.send(
      `<iq xmlns="jabber:client" type="set" id="bind"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>${resource}</resource></bind></iq>`,
    );
    const jid = bound.body?.getChild("iq")?.getChild("bind")?.getChildText("jid");
    if (!jid) throw new Error(`bind failed: ${bound.text}`);
    return jid;
  }
}

/** A client <body/> with `attrs` around `payload`. */
export function bodyXml(attrs: Record<string, string>, payload = ""): string {
  let open = `<body xmlns="${NS_HTTPBIND}"`;
  for (const [name, value] of Object.entries(attrs)) open += ` ${name}="${value}"`;
  return payload === "" ? `${open}/>` : `${open}>${payload}</body>`;
}
