// XEP-0124 §7.2 sid for Megaphone's BOSH sessions: `<connId>~<secret>`. It names the connection
// (conn-id.ts: its edge and its shard), so any edge forwards a request to the right shard with
// no lookup; the secret, kept in the connection's state, makes it unguessable. Connection ids
// and the secret (base64url) never contain "~".
export function sidOf(connId: string, secret: string): string {
  return `${connId}~${secret}`;
}

export function parseSid(sid: string): { connId: string; secret: string } | undefined {
  const tilde = sid.lastIndexOf("~");
  if (tilde <= 0 || tilde === sid.length - 1) return undefined;
  return { connId: sid.slice(0, tilde), secret: sid.slice(tilde + 1) };
}
