// The certificates of a c2s edge (RFC 6120 §13.7.1, XEP-0368): one default pair (tlsCert and
// tlsKey), and a directory (tlsCertDir) with one pair per domain, `<domain>.crt` and
// `<domain>.key` (as Prosody lays them out), picked by the client's SNI name. The files are
// checked every tlsReloadIntervalMs and reloaded when one changes (a renewed certificate is
// used by new connections without a restart); a reload that fails keeps the previous
// certificates and logs why, so a half-written renewal never takes TLS down.
import fs from "node:fs";
import path from "node:path";
import tls from "node:tls";
import type { Config } from "../../shared/config.js";
import type { Logger } from "../../shared/log.js";

/**
 * The settings read here (config.ts documents each); the served domain's pair in tlsCertDir is
 * the default when tlsCert is empty.
 */
export type TlsFiles = Pick<
  Config,
  "tlsCert" | "tlsKey" | "tlsCertDir" | "tlsReloadIntervalMs" | "domain"
>;

interface Loaded {
  fallback: tls.SecureContext;
  byName: Map<string, tls.SecureContext>;
}

const CERT_SUFFIX = ".crt";
const KEY_SUFFIX = ".key";

export class TlsContexts {
  private loaded: Loaded;
  private stamp: string;
  private readonly timer: NodeJS.Timeout;

  /** Loads the files now (throws an Error naming the setting if they cannot be used). */
  constructor(
    private readonly files: TlsFiles,
    private readonly log: Logger,
  ) {
    this.stamp = stampOf(files);
    this.loaded = load(files);
    this.timer = setInterval(() => this.reloadIfChanged(), files.tlsReloadIntervalMs);
    this.timer.unref();
  }

  /** Names with their own pair (from tlsCertDir). */
  get names(): string[] {
    return [...this.loaded.byName.keys()];
  }

  /** The context for a client that named `servername` (SNI), or did not (undefined). */
  contextFor(servername: string | undefined): tls.SecureContext {
    const name = servername?.toLowerCase().replace(/\.$/, "");
    return (name && this.loaded.byName.get(name)) || this.loaded.fallback;
  }

  /** For tls.TLSSocket's SNICallback. */
  readonly sniCallback = (
    servername: string,
    callback: (err: Error | null, ctx?: tls.SecureContext) => void,
  ): void => callback(null, this.contextFor(servername));

  /** Checks the files now; reloads if any changed. Returns whether it reloaded. */
  reloadIfChanged(): boolean {
    let stamp: string;
    try {
      stamp = stampOf(this.files);
    } catch (err) {
      this.log.warn({ err }, "TLS certificate files unreadable; keeping the loaded ones");
      return false;
    }
    if (stamp === this.stamp) return false;
    try {
      this.loaded = load(this.files);
      this.stamp = stamp;
      this.log.info({ names: this.names }, "TLS certificates reloaded");
      return true;
    } catch (err) {
      // Not stamped: tried again next interval (the renewal may still be being written).
      this.log.warn({ err }, "TLS certificate reload failed; keeping the loaded ones");
      return false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** The files' names, sizes and modification times: a change in any means a reload. */
function stampOf(files: TlsFiles): string {
  const parts: string[] = [];
  const add = (file: string) => {
    const st = fs.statSync(file);
    parts.push(`${file}:${st.size}:${st.mtimeMs}`);
  };
  if (files.tlsCert) {
    add(files.tlsCert);
    add(files.tlsKey);
  }
  const pairs = files.tlsCertDir ? dirPairs(files.tlsCertDir) : [];
  for (const pair of pairs) {
    add(pair.cert);
    add(pair.key);
  }
  return parts.join("|");
}

function dirPairs(dir: string): { name: string; cert: string; key: string }[] {
  const entries = new Set(fs.readdirSync(dir));
  const pairs = [];
  for (const entry of [...entries].sort()) {
    if (!entry.endsWith(CERT_SUFFIX)) continue;
    const name = entry.slice(0, -CERT_SUFFIX.length).toLowerCase();
    if (!entries.has(name + KEY_SUFFIX)) continue;
    pairs.push({ name, cert: path.join(dir, entry), key: path.join(dir, name + KEY_SUFFIX) });
  }
  return pairs;
}

function context(cert: string, key: string, setting: string): tls.SecureContext {
  try {
    return tls.createSecureContext({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
  } catch (err) {
    throw new Error(`cannot use the TLS pair ${cert} / ${key} (${setting}): ${err}`);
  }
}

function load(files: TlsFiles): Loaded {
  const byName = new Map<string, tls.SecureContext>();
  if (files.tlsCertDir) {
    let pairs;
    try {
      pairs = dirPairs(files.tlsCertDir);
    } catch (err) {
      throw new Error(`cannot read ${files.tlsCertDir} (MEGAPHONE_TLS_CERT_DIR): ${err}`);
    }
    for (const pair of pairs)
      byName.set(pair.name, context(pair.cert, pair.key, "MEGAPHONE_TLS_CERT_DIR"));
  }
  const fallback = files.tlsCert
    ? context(files.tlsCert, files.tlsKey, "MEGAPHONE_TLS_CERT, MEGAPHONE_TLS_KEY")
    : (byName.get(files.domain) ?? byName.values().next().value);
  if (!fallback)
    throw new Error(
      "c2s needs a certificate: set MEGAPHONE_TLS_CERT and MEGAPHONE_TLS_KEY, or MEGAPHONE_TLS_CERT_DIR with <domain>.crt and <domain>.key",
    );
  return { fallback, byName };
}
