/**
 * The three kinds of failure (STYLE rule 9). A CPU fault is architectural and goes to the guest
 * (see x86/fault.ts); a `GuestStopped` ends the run with the guest's first reason; a `LaunchError`
 * is a user or host problem, printed as one line by main.ts with a non-zero exit.
 */

/** A user or host problem before or around the guest: bad option, unreadable file, kernel that won't fit. */
export class LaunchError extends Error {
  override name = "LaunchError";
}

/** Why a guest stopped running. */
export type StopKind =
  | "poweroff"
  | "reboot"
  | "halt"
  | "triple-fault"
  | "panic"
  | "killed"
  | "quit"
  | "signal"
  | "error";

/** The guest stopped; `kind` says how, `reason` is the first reason given (later ones are ignored). */
export class GuestStopped extends Error {
  override name = "GuestStopped";
  constructor(readonly kind: StopKind, reason: string) {
    super(reason);
  }
}

/** A bug in lguest.ts itself: an invariant that must hold whatever the guest does. */
export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}
