/**
 * Tests for the virtio-9p transport (lib/virtio/p9.ts) through a driver that plays Linux's
 * 9pnet_virtio: the mount tag in the config space, a T-message in and its R-message out over
 * the ring (split across buffers, as zero-copy requests are), a message that lies about its size
 * answered with Rlerror, and a chain with no room for any reply resetting the device.
 */
import { assertEquals } from "../assert.ts";
import { HostFs } from "../../lib/backends/host_fs.ts";
import { P9_TATTACH, P9_TVERSION, P9Server } from "../../lib/backends/p9_server.ts";
import { P9Device, VIRTIO_9P_MOUNT_TAG } from "../../lib/virtio/p9.ts";
import { bit, VIRTIO_CONFIG_S_NEEDS_RESET } from "../../lib/virtio/virtio_device.ts";
import { Msg, Reply } from "../backends/p9_client.ts";
import { captureLog, TestMachine, VirtioDriver } from "./virtio_driver.ts";

async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "lguest-9p-dev-" });
  const m = new TestMachine();
  const { slot } = m.plug(new P9Device(new P9Server(await HostFs.open(dir, false)), "hostshare"), 10);
  const drv = new VirtioDriver(m, slot);
  return { m, drv, close: () => Deno.remove(dir, { recursive: true }) };
}

Deno.test("P9Device offers its mount tag in the configuration space", async () => {
  const { drv, close } = await setup();
  try {
    assertEquals(drv.deviceFeatures() & bit(VIRTIO_9P_MOUNT_TAG), bit(VIRTIO_9P_MOUNT_TAG));
    const len = drv.configRead(0, 2);
    const tag = Array.from({ length: len }, (_, i) => String.fromCharCode(drv.configRead(2 + i, 1))).join("");
    assertEquals(tag, "hostshare");
  } finally {
    await close();
  }
});

Deno.test("P9Device carries T-messages and R-messages over the ring, split across buffers", async () => {
  const { m, drv, close } = await setup();
  try {
    drv.start(1);
    const q = drv.queues[0];
    const version = new Msg().u32(8192).str("9P2000.L").bytes(P9_TVERSION, 0xFFFF);
    const s = drv.submit(q, [
      { data: version.subarray(0, 5) },
      { data: version.subarray(5) },
      { writable: 4 },
      {
        writable: 200,
      },
    ]);
    const u = await drv.waitUsed(q);
    assertEquals(u.id, s.head);
    const reply = new Uint8Array(u.len);
    reply.set(m.mem.u8.subarray(s.addrs[2], s.addrs[2] + 4));
    reply.set(m.mem.u8.subarray(s.addrs[3], s.addrs[3] + u.len - 4), 4);
    const r = new Reply(reply);
    assertEquals([r.type, r.tag, r.u32(), r.str()], [P9_TVERSION + 1, 0xFFFF, 8192, "9P2000.L"]);
    // A size field larger than the chain: Rlerror EPROTO with the request's tag.
    const lie = new Msg().u32(0).u32(0xFFFF_FFFF).str("u").str("").u32(0).bytes(P9_TATTACH, 42);
    new DataView(lie.buffer).setUint32(0, 5000, true);
    const s2 = drv.submit(q, [{ data: lie }, { writable: 64 }]);
    const u2 = await drv.waitUsed(q);
    const e = new Reply(m.mem.u8.slice(s2.addrs[1], s2.addrs[1] + u2.len));
    assertEquals([e.type, e.tag, e.errno], [7, 42, 71]);
    // A message larger than the negotiated msize: EMSGSIZE.
    const huge = new Msg().raw(new Uint8Array(9000)).bytes(P9_TATTACH, 43);
    const s3 = drv.submit(q, [{ data: huge }, { writable: 64 }]);
    const u3 = await drv.waitUsed(q);
    assertEquals(new Reply(m.mem.u8.slice(s3.addrs[1], s3.addrs[1] + u3.len)).errno, 90);
    assertEquals(drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
  } finally {
    await close();
  }
});

Deno.test("P9Device needs reset for a chain with no room for a reply", async () => {
  const { drv, close } = await setup();
  try {
    drv.start(1);
    const { lines } = await captureLog(async () => {
      drv.submit(drv.queues[0], [{ data: new Msg().u32(8192).str("9P2000.L").bytes(P9_TVERSION) }, {
        writable: 4,
      }]);
      await new Promise((r) => setTimeout(r, 20));
    });
    assertEquals(lines.length, 1);
    assertEquals(drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_CONFIG_S_NEEDS_RESET);
  } finally {
    await close();
  }
});
