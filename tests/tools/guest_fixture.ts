/**
 * The real Debian Guest for tests that need it (STYLE rule 11: boots and loaders use the real kernel).
 * Fetched once through tools/fetch_guest.ts; when the host cannot provide it (no apt, no i386 archive)
 * `guest` is undefined, `skipReason` says why, and those tests are ignored with that message.
 */

import { ensureGuest, type GuestFiles, GuestUnavailableError } from "../../tools/fetch_guest.ts";

let files: GuestFiles | undefined;
let reason = "";
try {
  files = await ensureGuest({ log: (line) => console.error(`fetch_guest: ${line}`) });
} catch (e) {
  if (!(e instanceof GuestUnavailableError)) throw e;
  reason = e.message;
  console.warn(`skipping tests that need the real Debian Guest: ${reason}`);
}

/** The cached Guest, or undefined when it cannot be fetched on this host. */
export const guest: GuestFiles | undefined = files;
/** Why `guest` is undefined ("" when it is not). */
export const skipReason: string = reason;
