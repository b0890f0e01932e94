/**
 * Debian Guests joined by socket networking (the first listens, the others connect, on 127.0.0.1),
 * each with its own MAC and an address on 10.0.0.0/24: shared by tests/boot/virtio_net_test.ts and
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
  const { guests, port } = await bootNetGroup(g, 2, bootTimeoutMs, memMiB, deterministic);
  return { a: guests[0], b: guests[1], port };
}

/**
 * Boots `count` Guests on one socket network: the first (10.0.0.1) listens, the others
 * (10.0.0.2, 10.0.0.3, ...) connect to it, so every frame between two connecting Guests crosses
 * the first one's switch. MACs are 52:54:00:00:00:0N for Guest N.
 */
export async function bootNetGroup(
  g: GuestFiles,
  count: number,
  bootTimeoutMs: number,
  memMiB = 256,
  deterministic = false,
): Promise<{ guests: GuestProcess[]; port: number }> {
  const port = freePort();
  const guestArgs = [`--initrd=${g.initrd}`, String(memMiB), g.vmlinux ?? g.kernel, ...FAST_ARGS];
  const guests: GuestProcess[] = [];
  for (let i = 1; i <= count; i++) {
    const link = i === 1 ? `listen:127.0.0.1:${port}` : `connect:127.0.0.1:${port}`;
    guests.push(
      new GuestProcess([`--net=${link},mac=52:54:00:00:00:0${i}`, ...guestArgs], { deterministic }),
    );
  }
  try {
    await Promise.all(guests.map((vm) => vm.waitFor(/\/ # /, bootTimeoutMs)));
    for (const [i, vm] of guests.entries()) {
      await vm.run(`ip link set eth0 up; ip addr add 10.0.0.${i + 1}/24 dev eth0`);
    }
  } catch (e) {
    await Promise.all(guests.map((vm) => vm.kill()));
    throw e;
  }
  return { guests, port };
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
