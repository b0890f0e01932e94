/**
 * Network throughput of lguest.ts's two kinds of network, printed side by side. Not a test:
 * figures depend on the host.
 *   socket: two Debian Guests on a socket link (127.0.0.1); random data from A to B with busybox nc.
 *   user:   one Guest on --net=user; busybox wget of a file from an HTTP server on the host
 *           (host → guest), and a hostfwd upload: a host client sends to the guest's nc -l.
 * Each figure is bytes / wall time of the transfer (from starting it to the receiver finishing).
 *
 *   deno run -A tools/bench_net.ts [--mib=N] [--only=socket|user] [--host-clock]
 *
 * Guests run with --deterministic unless --host-clock is given.
 */
import { bootNetPair, freePort, ncTransfer } from "../tests/boot/net_pair.ts";
import { GuestProcess } from "../tests/boot/guest_process.ts";
import { ensureGuest, type GuestFiles } from "./fetch_guest.ts";

const arg = (name: string) => Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const mib = Number(arg("mib") ?? 4);
const only = arg("only");
const hostClock = Deno.args.includes("--host-clock");
const bytes = mib * 1024 * 1024;
const rate = (ms: number) => `${(bytes / 1e6 / (ms / 1000)).toFixed(3)} MB/s`;
const g = await ensureGuest({ log: (line) => console.error(`fetch_guest: ${line}`) });
const results: string[] = [];

if (only === undefined || only === "socket") {
  const t0 = performance.now();
  const pair = await bootNetPair(g, 900_000, 256, !hostClock);
  console.log(`socket link: both guests up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  try {
    await pair.a.run(`dd if=/dev/urandom of=/tmp/f bs=64k count=${mib * 16} 2>/dev/null`);
    const ms = await ncTransfer(pair, 900_000);
    results.push(`socket link, guest → guest (nc, ${mib} MiB): ${rate(ms)}`);
  } finally {
    await pair.a.type("poweroff -f\n");
    await pair.b.type("poweroff -f\n");
    await Promise.all([pair.a.exit(60_000), pair.b.exit(60_000)]);
  }
}

if (only === undefined || only === "user") results.push(...await benchUser(g));

console.log(results.join("\n"));

async function benchUser(g: GuestFiles): Promise<string[]> {
  const file = new Uint8Array(bytes);
  for (let at = 0; at < file.length; at += 65536) crypto.getRandomValues(file.subarray(at, at + 65536));
  const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response(file));
  const fwd = freePort();
  const vm = new GuestProcess([
    `--net=user,hostfwd=tcp::${fwd}-:7000`,
    `--initrd=${g.initrd}`,
    "256",
    g.vmlinux ?? g.kernel,
    "console=ttyS0",
    "cryptomgr.notests=1",
    "noisapnp",
  ], { deterministic: !hostClock });
  const out: string[] = [];
  try {
    const t0 = performance.now();
    await vm.waitFor(/\/ # /, 900_000);
    console.log(`user network: guest up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await vm.run("udhcpc -i eth0 -n -q >/dev/null 2>&1", 180_000);
    let started = performance.now();
    const got = await vm.run(`wget -q -O - http://10.0.2.2:${http.addr.port}/ | wc -c`, 900_000);
    let ms = performance.now() - started;
    if (!got.includes(String(bytes))) throw new Error(`wget got: ${got}`);
    out.push(`user network, host → guest (wget from a host HTTP server, ${mib} MiB): ${rate(ms)}`);

    const from = vm.output.length;
    await vm.type("nc -l -p 7000 | wc -c; echo UP-DONE-$((40+2))\n");
    await new Promise((r) => setTimeout(r, 2000));
    started = performance.now();
    const c = await Deno.connect({ hostname: "127.0.0.1", port: fwd });
    for (let done = 0; done < file.length;) done += await c.write(file.subarray(done));
    c.close();
    const m = await vm.waitFor(/(\d+)\r?\nUP-DONE-42/, 900_000, from);
    ms = performance.now() - started;
    if (Number(m[1]) !== bytes) throw new Error(`the guest received ${m[1]} bytes`);
    out.push(`user network, host → guest (hostfwd upload to nc -l, ${mib} MiB): ${rate(ms)}`);
    await vm.powerOff();
  } catch (e) {
    await vm.kill();
    throw e;
  } finally {
    await http.shutdown();
  }
  return out;
}
