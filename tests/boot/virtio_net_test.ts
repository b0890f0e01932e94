/**
 * Three Debian Guests on one socket network (A listens, B and C connect to it, 127.0.0.1): A's
 * link switches frames between its own Guest and both peers, so all three share one Ethernet
 * segment (lguest's --sharenet). virtio-net brings up eth0 with the MAC we gave, every pair pings
 * (B ↔ C crossing A's switch), and 2 MiB of random data crosses TCP from A to B with busybox nc
 * intact (md5sum equal on both ends); then all power off cleanly.
 */
import { assert, assertEquals } from "../assert.ts";
import { guest, skipReason } from "../tools/guest_fixture.ts";
import { bootNetGroup, ncTransfer } from "./net_pair.ts";

const ignore = guest === undefined;
if (ignore) console.warn(`network boot test skipped: ${skipReason}`);

const BOOT_TIMEOUT_MS = 900_000;

Deno.test({
  name: "three guests on one listen: link ping each other and move 2 MiB over TCP intact",
  ignore,
  sanitizeResources: false,
  async fn() {
    // Deterministic clocks, as the other boot tests; with a network link their idle time passes in
    // host time, so timeouts and the peer's answers keep their real order.
    const { guests, port } = await bootNetGroup(guest!, 3, BOOT_TIMEOUT_MS, 256, true);
    const [a, b, c] = guests;
    try {
      assert(/\beth0\b/.test(await a.run("ls /sys/class/net")));
      for (const [i, vm] of guests.entries()) {
        assert((await vm.run("cat /sys/class/net/eth0/address")).includes(`52:54:00:00:00:0${i + 1}`));
      }
      for (const [vm, ip] of [[a, "10.0.0.2"], [b, "10.0.0.3"], [c, "10.0.0.1"], [c, "10.0.0.2"]] as const) {
        const out = await vm.run(`ping -c 2 ${ip}`, 120_000);
        assert(/2 packets transmitted, 2 packets received, 0% packet loss/.test(out), out);
      }

      const sum = /^([0-9a-f]{32})\s/m;
      const sent = await a.run("dd if=/dev/urandom of=/tmp/f bs=64k count=32 2>/dev/null; md5sum /tmp/f");
      const sentSum = sent.match(sum)?.[1];
      assert(sentSum !== undefined, sent);
      await ncTransfer({ a, b, port }, 300_000);
      const got = await b.run("md5sum /tmp/f; wc -c < /tmp/f");
      assertEquals(got.match(sum)?.[1], sentSum, got);
      assert(/^2097152$/m.test(got), got);

      await Promise.all(guests.map((vm) => vm.powerOff()));
    } catch (e) {
      await Promise.all(guests.map((vm) => vm.kill()));
      throw e;
    }
  },
});
