// Clients from Debian's packages that end-to-end tests drive (programs no one here wrote):
// installed with apt-get when missing, as .ci/run installs them, so those tests never skip.
import { execFileSync } from "node:child_process";

/**
 * Installs `packages` when `present()` says they are missing, then checks again: a failed
 * install, or one that still leaves them unusable, throws naming the packages.
 */
export function ensureDebianPackages(packages: string[], present: () => boolean): void {
  if (present()) return;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update"], { stdio: "ignore", env });
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", ...packages], {
    stdio: "ignore",
    env,
  });
  if (!present()) throw new Error(`${packages.join(", ")} installed but still not usable`);
}

/** Whether `command` runs (exit status 0) with `args`, e.g. `--version`. */
export function runs(command: string, args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
