/**
 * `deno task start [-- options and kernel arguments...]`: one command to a shell. Fetches and builds
 * the reference Guest on first use (tools/fetch_guest.ts, its progress on stderr), then boots it with
 * a busybox shell on the terminal; later runs find it cached and boot at once. What follows `--` is
 * appended to the default command line, where launcher options (`--block=disk.img`, `--net=...`) are
 * taken as options and anything else goes to the kernel (`lguest_run="uname -a"`).
 */
import { main } from "../main.ts";
import { ensureGuest, guestDir, GuestUnavailableError, STABLE_INITRD, STABLE_KERNEL } from "./fetch_guest.ts";

/** Launcher options that take their value as the next argument (`--block disk.img`). */
const VALUED = ["--block", "--initrd", "--net", "--firmware"];

/**
 * The launcher arguments `deno task start` boots with, for the cache in `dir`: the user's options
 * (`--help` included) before <mem>, the user's kernel arguments after the default ones.
 */
export function startArgs(dir: string, extra: string[]): string[] {
  const args = extra[0] === "--" ? extra.slice(1) : extra;
  const options: string[] = [], kernelArgs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (!args[i].startsWith("-")) kernelArgs.push(args[i]);
    else if (VALUED.includes(args[i]) && i + 1 < args.length) options.push(args[i], args[++i]);
    else options.push(args[i]);
  }
  return [
    ...options,
    `--initrd=${dir}/${STABLE_INITRD}`,
    "256",
    `${dir}/${STABLE_KERNEL}`,
    "console=ttyS0",
    "cryptomgr.notests=1",
    "noisapnp",
    ...kernelArgs,
  ];
}

if (import.meta.main) {
  try {
    await ensureGuest({ log: (line) => console.error(`guest: ${line}`) });
  } catch (e) {
    if (!(e instanceof GuestUnavailableError)) throw e;
    console.error(`lguest: Cannot fetch the reference Guest: ${e.message}`);
    Deno.exit(2);
  }
  Deno.exit(await main(startArgs(guestDir(), Deno.args)));
}
