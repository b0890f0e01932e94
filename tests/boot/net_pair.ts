/**
 * Two Debian Guests joined by socket networking (A listens, B connects, on 127.0.0.1), each with
 * its own MAC and an address on 10.0.0.0/24: shared by tests/boot/virtio_net_test.ts and
 * tools/bench_net.ts.
 */
import type { GuestFiles } from "../../tools/fetch_guest.ts";
import { GuestProcess } from "./guest_process.ts";

/** Kernel arguments that skip work irrelevant here (as in debian_boot_test.ts). */
const FAST_ARGS = ["console=ttyS0", "cryptomgr.notests=1", "noisapnp"];

export interface NetPair {
  a: GuestProcess;
  b: GuestProcess;
  port: number;
}

/** A free TCP port on 127.0.0.1 (bound, read and released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Boots A (10.0.0.1, listen) and B (10.0.0.2, connect) to their shells, with eth0 up and addressed. */
export async function bootNetPair(
  g: GuestFiles,
  bootTimeoutMs: number,
  memMiB = 256,
  deterministic = false,
): Promise<NetPair> {
  const port = freePort();
  const guestArgs = [`--initrd=${g.initrd}`, String(memMiB), g.vmlinux ?? g.kernel, ...FAST_ARGS];
  const a = new GuestProcess([`--net=listen:127.0.0.1:${port},mac=52:54:00:00:00:01`, ...guestArgs], {
    deterministic,
  });
  const b = new GuestProcess([`--net=connect:127.0.0.1:${port},mac=52:54:00:00:00:02`, ...guestArgs], {
    deterministic,
  });
  const pair = { a, b, port };
  await withNetPair(pair, async () => {
    await Promise.all([a.waitFor(/\/ # /, bootTimeoutMs), b.waitFor(/\/ # /, bootTimeoutMs)]);
    for (const [vm, ip] of [[a, "10.0.0.1"], [b, "10.0.0.2"]] as const) {
      await vm.run(`ip link set eth0 up; ip addr add ${ip}/24 dev eth0`);
    }
  });
  return pair;
}

/**
 * Runs `fn` with a started pair and returns what it returns. If `fn` throws, both launchers are
 * killed before the error goes on (withGuest does the same for one Guest).
 */
export async function withNetPair<T>(pair: NetPair, fn: (pair: NetPair) => Promise<T>): Promise<T> {
  try {
    return await fn(pair);
  } catch (e) {
    await Promise.all([pair.a.kill(), pair.b.kill()]);
    throw e;
  }
}

/**
 * Sends /tmp/f from A to B with busybox nc and returns the wall time of the transfer in ms (from
 * starting the sender to B's listener exiting). B listens on TCP port 5000.
 */
export async function ncTransfer(pair: NetPair, timeoutMs: number): Promise<number> {
  const { a, b } = pair;
  const from = b.output.length;
  // B: listen in the foreground; the marker line tells us when nc has exited (A closed).
  await b.type("nc -l -p 5000 > /tmp/f; echo NC-RX-DONE-$((40+2))\n");
  // Give B's listener time to bind before A connects (A retries too, below).
  await new Promise((r) => setTimeout(r, 2000));
  const started = performance.now();
  // Busybox nc exits (closing the connection) at stdin EOF; retry in case B was not listening yet.
  const sent = await a.run(
    "for i in 1 2 3 4 5; do nc 10.0.0.2 5000 < /tmp/f && break; sleep 1; done; echo nc-tx-rc=$?",
    timeoutMs,
  );
  await b.waitFor(/NC-RX-DONE-42/, timeoutMs, from);
  const ms = performance.now() - started;
  if (!/nc-tx-rc=0/.test(sent)) throw new Error(`sender nc failed: ${sent}`);
  return ms;
}
