// Whether a stored account opens with a password, checked the way the server checks PLAIN.
import { plainVerify } from "../../services/session/core/sasl/plain.js";
import type { Account } from "../../services/shared/stores/account/account-store.js";

/** True if `password` opens the account of `bareJid`, checked the way PLAIN checks it. */
export async function opens(
  account: Account | undefined,
  user: string,
  password: string,
): Promise<boolean> {
  try {
    await plainVerify(`\0${user}\0${password}`, {
      lookup: async () => ({ account, standIn: { saltKey: Buffer.alloc(32), iterations: 4096 } }),
      domain: "localhost",
      queueMaxLogins: 1,
    });
    return true;
  } catch {
    return false;
  }
}
