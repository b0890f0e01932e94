/**
 * Network throughput between two Debian Guests on a socket network (127.0.0.1): boots the pair,
 * sends random data from A to B with busybox nc and prints MB/s (bytes / wall time of the transfer,
 * from starting the sender to the receiver exiting). Not a test: figures depend on the host.
 *
 *   deno run -A tools/bench_net.ts [--mib=N] [--host-clock]
 *
 * Guests run with --deterministic unless --host-clock is given.
 */
import { bootNetPair, ncTransfer } from "../tests/boot/net_pair.ts";
import { ensureGuest } from "./fetch_guest.ts";

const mibArg = Deno.args.find((a) => a.startsWith("--mib="));
const mib = mibArg === undefined ? 4 : Number(mibArg.slice("--mib=".length));
const hostClock = Deno.args.includes("--host-clock");
const g = await ensureGuest({ log: (line) => console.error(`fetch_guest: ${line}`) });
const t0 = performance.now();
const pair = await bootNetPair(g, 600_000, 256, !hostClock);
console.log(`both guests up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
try {
  await pair.a.run(`dd if=/dev/urandom of=/tmp/f bs=64k count=${mib * 16} 2>/dev/null`);
  const ms = await ncTransfer(pair, 600_000);
  const bytes = mib * 1024 * 1024;
  console.log(
    `${mib} MiB in ${(ms / 1000).toFixed(2)} s: ${(bytes / 1e6 / (ms / 1000)).toFixed(3)} MB/s`,
  );
} finally {
  await pair.a.type("poweroff -f\n");
  await pair.b.type("poweroff -f\n");
  await Promise.all([pair.a.exit(60_000), pair.b.exit(60_000)]);
}
