// The Megaphone version, reported to clients (XEP-0092) and on /metrics (megaphone_build_info).
// Kept equal to package.json's version (checked in test/unit/metrics.test.ts).
export const MEGAPHONE_VERSION = "0.1.0";
