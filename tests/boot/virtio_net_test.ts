/**
 * Two Debian Guests on one socket network (A listens, B connects, 127.0.0.1): virtio-net brings up
 * eth0 with the MAC we gave, the guests ping each other, and 2 MiB of random data crosses TCP with
 * busybox nc intact (md5sum equal on both ends); then both power off cleanly.
 */
import { assert, assertEquals } from "../assert.ts";
import { guest, skipReason } from "../tools/guest_fixture.ts";
import { bootNetPair, ncTransfer, withNetPair } from "./net_pair.ts";

const ignore = guest === undefined;
if (ignore) console.warn(`network boot test skipped: ${skipReason}`);

const BOOT_TIMEOUT_MS = 600_000;

Deno.test({
  name: "two guests on a socket network ping each other and move 2 MiB over TCP intact",
  ignore,
  sanitizeResources: false,
  async fn() {
    // Deterministic clocks, as the other boot tests; with a network link their idle time passes in
    // host time, so timeouts and the peer's answers keep their real order.
    const pair = await bootNetPair(guest!, BOOT_TIMEOUT_MS, 256, true);
    await withNetPair(pair, async ({ a, b }) => {
      assert(/\beth0\b/.test(await a.run("ls /sys/class/net")));
      assert((await a.run("cat /sys/class/net/eth0/address")).includes("52:54:00:00:00:01"));
      assert((await b.run("cat /sys/class/net/eth0/address")).includes("52:54:00:00:00:02"));

      for (const [vm, ip] of [[a, "10.0.0.2"], [b, "10.0.0.1"]] as const) {
        const out = await vm.run(`ping -c 3 ${ip}`, 120_000);
        assert(/3 packets transmitted, 3 packets received, 0% packet loss/.test(out), out);
      }

      const sum = /^([0-9a-f]{32})\s/m;
      const sent = await a.run("dd if=/dev/urandom of=/tmp/f bs=64k count=32 2>/dev/null; md5sum /tmp/f");
      const sentSum = sent.match(sum)?.[1];
      assert(sentSum !== undefined, sent);
      await ncTransfer(pair, 300_000);
      const got = await b.run("md5sum /tmp/f; wc -c < /tmp/f");
      assertEquals(got.match(sum)?.[1], sentSum, got);
      assert(/^2097152$/m.test(got), got);

      await Promise.all([a.powerOff(), b.powerOff()]);
    });
  },
});
