// Self-signed certificates for the c2s TLS tests, made with the openssl command line (Node 20's
// crypto cannot issue X.509 certificates), and a way to make this process's TLS clients trust
// them without turning verification off.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";

export interface TestCert {
  /** PEM files on disk. */
  certFile: string;
  keyFile: string;
  /** The certificate's PEM (it is its own CA). */
  cert: string;
}

/** A P-256 self-signed certificate for `names` (DNS names; 127.0.0.1 is added as an IP). */
export function makeCert(
  names: string[],
  dir = mkdtempSync(join(tmpdir(), "megaphone-tls-")),
  base = names[0],
): TestCert {
  const certFile = join(dir, `${base}.crt`);
  const keyFile = join(dir, `${base}.key`);
  const san = [...names.map((n) => `DNS:${n}`), "IP:127.0.0.1"].join(",");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=${names[0]}`,
      "-addext",
      `subjectAltName=${san}`,
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    { stdio: "ignore" },
  );
  return { certFile, keyFile, cert: readFileSync(certFile, "utf8") };
}

/**
 * Makes every tls.connect() of this process that names no CA trust `certs` too (as
 * NODE_EXTRA_CA_CERTS would, which Node reads only at start-up); @xmpp/tls and @xmpp/starttls
 * call tls.connect without a CA. Returns the function that undoes it.
 */
export function trustCerts(certs: string[]): () => void {
  const original = tls.connect;
  const ca = [...tls.rootCertificates, ...certs];
  const patched = ((options: tls.ConnectionOptions, ...rest: unknown[]) =>
    typeof options === "object" && options !== null && options.ca === undefined
      ? (original as (...a: unknown[]) => tls.TLSSocket)({ ...options, ca }, ...rest)
      : (original as (...a: unknown[]) => tls.TLSSocket)(options, ...rest)) as typeof tls.connect;
  tls.connect = patched;
  return () => {
    tls.connect = original;
  };
}
