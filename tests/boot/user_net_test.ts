/**
 * One Debian Guest on `--net=user` (the built-in router), with two hostfwd rules and a pcap
 * capture: busybox udhcpc gets 10.0.2.15 with no configuration, the gateway answers pings, DNS
 * resolves `localhost` through the host's resolver, busybox wget fetches a file from an HTTP
 * server this test runs on 127.0.0.1 (as 10.0.2.2) with the right sha256, and a host client
 * reaches guest `nc -l` listeners through hostfwd in both directions. After power-off, the pcap
 * file parses and holds the ping's request and reply.
 */
import { assert, assertEquals } from "../assert.ts";
import { guest, skipReason } from "../tools/guest_fixture.ts";
import { freePort } from "./net_pair.ts";
import { GuestProcess } from "./guest_process.ts";
import { readPcap } from "../net/pcap_reader.ts";

const ignore = guest === undefined;
if (ignore) console.warn(`user network boot test skipped: ${skipReason}`);

const BOOT_TIMEOUT_MS = 900_000;
const FAST_ARGS = ["console=ttyS0", "cryptomgr.notests=1", "noisapnp"];

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function readAll(c: Deno.Conn): Promise<string> {
  let s = "";
  const buf = new Uint8Array(4096);
  const dec = new TextDecoder();
  for (;;) {
    const n = await c.read(buf);
    if (n === null) return s;
    s += dec.decode(buf.subarray(0, n));
  }
}

Deno.test({
  name:
    "a guest on --net=user gets DHCP, pings the gateway, resolves localhost, wgets from the host, serves hostfwd",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const file = new Uint8Array(65536 * 4);
    for (let at = 0; at < file.length; at += 65536) crypto.getRandomValues(file.subarray(at, at + 65536));
    const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      const path = new URL(req.url).pathname;
      return path === "/file" ? new Response(file) : new Response("not here", { status: 404 });
    });
    const httpPort = http.addr.port;
    const toGuestPort = freePort();
    const fromGuestPort = freePort();
    const pcap = await Deno.makeTempFile({ suffix: ".pcap" });
    const g = guest!;
    const vm = new GuestProcess([
      `--net=user,hostfwd=tcp::${toGuestPort}-:7000,hostfwd=tcp:127.0.0.1:${fromGuestPort}-:7001,pcap=${pcap}`,
      `--initrd=${g.initrd}`,
      "256",
      g.vmlinux ?? g.kernel,
      ...FAST_ARGS,
    ]);
    try {
      await vm.waitFor(/\/ # /, BOOT_TIMEOUT_MS);
      const step = (what: string) => console.error(`user network boot test: ${what}`);
      step("booted; udhcpc");
      const dhcp = await vm.run("udhcpc -i eth0 -n -q -t 5 2>&1; ip -4 addr show eth0; ip route", 180_000);
      assert(/inet 10\.0\.2\.15\/24/.test(dhcp), dhcp);
      assert(/default via 10\.0\.2\.2/.test(dhcp), dhcp);
      assert((await vm.run("cat /etc/resolv.conf")).includes("nameserver 10.0.2.3"));

      step("ping");
      const ping = await vm.run("ping -c 2 10.0.2.2", 120_000);
      assert(/2 packets transmitted, 2 packets received, 0% packet loss/.test(ping), ping);

      step("nslookup");
      const dns = await vm.run("nslookup localhost 10.0.2.3 2>&1", 120_000);
      assert(/Name:\s+localhost[\s\S]*127\.0\.0\.1/.test(dns), dns);

      step("wget");
      const got = await vm.run(`wget -q -O - http://10.0.2.2:${httpPort}/file | sha256sum`, 300_000);
      assertEquals(got.match(/^([0-9a-f]{64})\s/m)?.[1], await sha256(file), got);

      step("hostfwd");
      // hostfwd, host → guest: a host client's bytes reach the guest's nc -l (in the foreground, as
      // in net_pair.ts: a background nc reading the terminal could be stopped by SIGTTIN). Until nc
      // listens the guest resets the forwarded connection, so the client tries again.
      const from = vm.output.length;
      await vm.type("nc -l -p 7000 > /tmp/in; echo NC-IN-DONE-$((40+2))\n");
      let done = false;
      for (let attempt = 0; attempt < 10 && !done; attempt++) {
        await new Promise((r) => setTimeout(r, 2000));
        const c1 = await Deno.connect({ hostname: "127.0.0.1", port: toGuestPort });
        await c1.write(new TextEncoder().encode("hello from the host\n")).catch(() => 0);
        c1.close();
        done = await vm.waitFor(/NC-IN-DONE-42/, 30_000, from).then(() => true, () => false);
      }
      const inFile = await vm.run("cat /tmp/in");
      assert(inFile.includes("hello from the host"), inFile);

      // hostfwd, guest → host: the guest's nc -l sends a file to a host client.
      await vm.run("echo hello from the guest > /tmp/out; nc -l -p 7001 < /tmp/out & sleep 1");
      let fromGuest = "";
      for (let attempt = 0; attempt < 10 && !fromGuest.includes("hello from the guest"); attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, 2000)); // nc not listening yet: reset
        const c2 = await Deno.connect({ hostname: "127.0.0.1", port: fromGuestPort });
        fromGuest = await readAll(c2).catch(() => "");
        c2.close();
      }
      assert(fromGuest.includes("hello from the guest"), fromGuest);

      await vm.powerOff();
    } catch (e) {
      await vm.kill();
      throw e;
    } finally {
      await http.shutdown();
    }
    try {
      const cap = readPcap(await Deno.readFile(pcap));
      assertEquals(cap.linkType, 1);
      const icmp = cap.records.filter((r) =>
        r.data.length >= 42 && r.data[12] === 0x08 && r.data[13] === 0 && r.data[23] === 1
      );
      const requests = icmp.filter((r) => r.data[34] === 8).length;
      const replies = icmp.filter((r) => r.data[34] === 0).length;
      assert(requests >= 2 && replies >= 2, `${requests} echo requests, ${replies} replies in the capture`);
    } finally {
      await Deno.remove(pcap);
    }
  },
});
