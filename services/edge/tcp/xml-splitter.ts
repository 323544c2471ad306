// RFC 6120 §4.2 XML streams over TCP, cut into what the session tier takes: one complete
// top-level element per frame (as RFC 7395 §3.3.3 gives it over WebSocket). This is a splitter,
// not a parser: it finds element boundaries and nothing more, and the session's frame parser
// (session/core/frame-parser.ts) checks each element fully. It also refuses, per RFC 6120 §11.1,
// what would make the boundaries ambiguous or what no XMPP stream may hold: comments,
// processing instructions (the XML declaration before a stream header excepted, §11.5) and DTD
// markup.
//
// It scans bytes, not characters: every byte that matters for markup is ASCII, and in UTF-8 no
// byte of a multi-byte character is ASCII, so a chunk may end anywhere, inside a character too.
// An element is decoded (strictly, so bad UTF-8 is not-well-formed, §11.6) only once complete.
// Memory is bounded: the bytes of the element being read, at most maxBytes (then
// policy-violation, §13.12), the same bound for a stream header or an XML declaration.

/** What the splitter found, in stream order. */
export type SplitEvent =
  /** A stream header `<stream:stream ...>`: its start tag, verbatim. */
  | { kind: "header"; tag: string }
  /** One complete top-level element (a child of the stream root), verbatim. */
  | { kind: "element"; xml: string }
  /** The stream's end tag `</stream:stream>`. */
  | { kind: "close" };

/** Why the stream cannot go on: the RFC 6120 §4.9.3 condition the edge answers with. */
export type SplitErrorCondition =
  | "not-well-formed"
  | "restricted-xml"
  | "policy-violation"
  | "invalid-namespace"
  | "bad-namespace-prefix";

export class SplitError extends Error {
  constructor(
    readonly condition: SplitErrorCondition,
    text: string,
  ) {
    super(text);
    this.name = "SplitError";
  }
}

const LT = 0x3c; // <
const GT = 0x3e; // >
const SLASH = 0x2f;
const QUESTION = 0x3f;
const BANG = 0x21;
const DASH = 0x2d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const DQUOTE = 0x22;
const SQUOTE = 0x27;
const CDATA_OPEN = Buffer.from("[CDATA[");
/**
 * Bytes of a tag name compared for nesting; longer names are compared on these only (the
 * session's parser checks the whole element anyway).
 */
const MAX_NAME_BYTES = 256;

function isXmlSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a;
}

/** What a byte completed at the top level. */
type Completed = "header" | "root-end" | "element" | "pi";

const enum State {
  /** Between tags: character data inside an element, white space outside. */
  Text,
  /** Just after `<`. */
  Open,
  StartTag,
  EndTag,
  /** `<?...?>`: only the XML declaration, only before a stream header. */
  Pi,
  /** After `<!`: a CDATA section opening, or restricted markup. */
  Bang,
  Cdata,
}

/**
 * Pushes chunks of one direction of an XML stream and hands out its events. After an error it
 * must not be used again (the stream is over).
 */
export class XmlSplitter {
  private state = State.Text;
  /** Open elements below the stream root (0: between top-level elements). */
  private depth = 0;
  /** Chunks of the element (or header, or declaration) being read. */
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Bytes of the current token seen so far, for the bound. */
  private tokenBytes = 0;
  private quote = 0;
  private previous = 0;
  /** Progress through `[CDATA[` after `<!`, or through `]]>` inside one. */
  private matched = 0;
  /** The stream root's qualified name, from its header (for its end tag). */
  private rootName = "";
  /** The name of the start or end tag being read. */
  private tagName: number[] = [];
  private readingName = false;
  /**
   * Names of the open elements below the root, so a mismatched end tag is refused when it comes
   * (not only once the element's byte count runs out). Bounded by maxBytes like the element.
   */
  private readonly open: string[] = [];
  /** An XML declaration was read: a stream header must follow. */
  private sawDeclaration = false;
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });

  constructor(private readonly maxBytes: number) {}

  /**
   * Scans `chunk`, calling `onEvent` for each event; stops early (returning the offset after the
   * event) when `onEvent` returns false, e.g. after <starttls/>, when the rest of the bytes
   * belong to TLS. Returns chunk.length when it scanned everything. Throws SplitError.
   */
  push(chunk: Buffer, onEvent: (event: SplitEvent) => boolean | void): number {
    let start = 0; // where the current token's bytes in this chunk begin
    let inToken = this.partBytes > 0 || this.state !== State.Text;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (!inToken) {
        // Between top-level elements: white space only (keepalives, RFC 6120 §4.6.1).
        if (isXmlSpace(b)) continue;
        if (b !== LT) throw new SplitError("not-well-formed", "text outside any element");
        inToken = true;
        start = i;
        this.tokenBytes = 1;
        this.state = State.Open;
        continue;
      }
      if (++this.tokenBytes > this.maxBytes)
        throw new SplitError("policy-violation", `element larger than ${this.maxBytes} bytes`);
      const event = this.step(b);
      if (event === undefined) continue;
      const bytes = this.take(chunk, start, i + 1);
      inToken = false;
      start = i + 1;
      const out = this.finish(event, bytes);
      if (out && onEvent(out) === false) return i + 1;
    }
    if (inToken) this.keep(chunk.subarray(start));
    return chunk.length;
  }

  /**
   * Advances the state machine by one byte of a token; returns what the byte completed, if
   * it completed a top-level token.
   */
  private step(b: number): Completed | undefined {
    const prev = this.previous;
    this.previous = b;
    switch (this.state) {
      case State.Text:
        if (b === LT) this.state = State.Open;
        return undefined;
      case State.Open:
        if (b === SLASH) {
          this.state = State.EndTag;
          this.beginName();
        } else if (b === QUESTION) {
          if (this.depth > 0 || this.sawDeclaration)
            throw new SplitError("restricted-xml", "processing instruction");
          this.state = State.Pi;
        } else if (b === BANG) {
          this.state = State.Bang;
          this.matched = 0;
        } else if (isXmlSpace(b) || b === GT || b === LT) {
          throw new SplitError("not-well-formed", "malformed tag");
        } else {
          this.state = State.StartTag;
          this.quote = 0;
          this.beginName();
          this.nameByte(b);
        }
        return undefined;
      case State.StartTag:
        if (this.quote !== 0) {
          if (b === this.quote) this.quote = 0;
          else if (b === LT) throw new SplitError("not-well-formed", "'<' in attribute value");
          return undefined;
        }
        if (this.readingName) this.nameByte(b);
        if (b === DQUOTE || b === SQUOTE) this.quote = b;
        else if (b === LT) throw new SplitError("not-well-formed", "'<' in a tag");
        else if (b === GT) {
          this.state = State.Text;
          if (prev === SLASH) return this.depth === 0 ? "element" : undefined;
          return this.opened();
        }
        return undefined;
      case State.EndTag:
        if (this.readingName) this.nameByte(b);
        if (b !== GT) return undefined;
        this.state = State.Text;
        return this.closed();
      case State.Pi:
        if (b === GT && prev === QUESTION) {
          this.state = State.Text;
          return "pi";
        }
        return undefined;
      case State.Bang:
        if (this.matched === 0 && b !== LBRACKET)
          throw new SplitError("restricted-xml", b === DASH ? "comment" : "DTD markup");
        if (b !== CDATA_OPEN[this.matched])
          throw new SplitError("not-well-formed", "malformed CDATA section");
        if (++this.matched === CDATA_OPEN.length) {
          if (this.depth === 0) throw new SplitError("not-well-formed", "CDATA outside an element");
          this.state = State.Cdata;
          this.matched = 0;
        }
        return undefined;
      case State.Cdata:
        if (b === RBRACKET) this.matched = Math.min(this.matched + 1, 2);
        else if (b === GT && this.matched === 2) this.state = State.Text;
        else this.matched = 0;
        return undefined;
    }
  }

  /** A start tag (not self-closing) ended. */
  private opened(): "header" | undefined {
    const name = this.nameString();
    if (this.depth === 0 && this.isStreamRoot(name)) return "header";
    this.open.push(name);
    this.depth++;
    return undefined;
  }

  /** An end tag ended. */
  private closed(): "root-end" | "element" | undefined {
    if (this.depth === 0) {
      if (this.rootName === "" || this.nameString() !== this.rootName)
        throw new SplitError("not-well-formed", "end tag without start tag");
      return "root-end";
    }
    if (this.open.pop() !== this.nameString())
      throw new SplitError("not-well-formed", "mismatched end tag");
    this.depth--;
    return this.depth === 0 ? "element" : undefined;
  }

  private finish(kind: Completed, bytes: Buffer): SplitEvent | undefined {
    const text = this.decode(bytes);
    switch (kind) {
      case "pi":
        if (!/^<\?xml[ \t\r\n]/.test(text))
          throw new SplitError("restricted-xml", "processing instruction");
        this.sawDeclaration = true;
        return undefined;
      case "header":
        this.sawDeclaration = false;
        return { kind: "header", tag: text };
      case "root-end":
        this.rootName = "";
        return { kind: "close" };
      case "element":
        if (this.rootName === "")
          throw new SplitError("not-well-formed", "element before the stream header");
        if (this.sawDeclaration)
          throw new SplitError(
            "not-well-formed",
            "XML declaration not followed by a stream header",
          );
        return { kind: "element", xml: text };
    }
  }

  private isStreamRoot(name: string): boolean {
    // The header's namespaces are checked by its reader (stream-header-translate.ts); here the
    // local name decides: a top-level `stream` start tag that is not self-closing opens a stream.
    const local = name.slice(name.indexOf(":") + 1);
    if (local !== "stream") return false;
    this.rootName = name;
    return true;
  }

  private beginName(): void {
    this.tagName.length = 0;
    this.readingName = true;
  }

  private nameByte(b: number): void {
    if (isXmlSpace(b) || b === GT || b === SLASH) this.readingName = false;
    else if (this.tagName.length < MAX_NAME_BYTES) this.tagName.push(b);
  }

  private nameString(): string {
    return Buffer.from(this.tagName).toString("latin1");
  }

  private keep(part: Buffer): void {
    if (part.length === 0) return;
    // A copy: the socket may reuse its chunk's memory.
    this.parts.push(Buffer.from(part));
    this.partBytes += part.length;
  }

  private take(chunk: Buffer, start: number, end: number): Buffer {
    const tail = chunk.subarray(start, end);
    if (this.partBytes === 0) return tail;
    const whole = Buffer.concat([...this.parts, tail]);
    this.parts = [];
    this.partBytes = 0;
    return whole;
  }

  private decode(bytes: Buffer): string {
    try {
      return this.decoder.decode(bytes);
    } catch {
      throw new SplitError("not-well-formed", "invalid UTF-8");
    }
  }
}
