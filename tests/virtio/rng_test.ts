/**
 * Tests for virtio-rng (virtio 1.x §5.4) with the host entropy backend: buffers are filled,
 * the used length says how much, and requests are capped at 64 KiB.
 */
import { assert, assertEquals } from "../assert.ts";
import { HostEntropy } from "../../lib/backends/entropy.ts";
import { RNG_MAX_REQUEST_BYTES, RngDevice } from "../../lib/virtio/rng.ts";
import { TestMachine, VirtioDriver } from "./virtio_driver.ts";

function setup() {
  const m = new TestMachine(8 << 20);
  const { slot } = m.plug(new RngDevice(new HostEntropy()), 10);
  const drv = new VirtioDriver(m, slot);
  drv.start(1);
  return { m, drv };
}

Deno.test("RngDevice fills device-writable buffers with random bytes", async () => {
  const { m, drv } = setup();
  const q = drv.queues[0];
  const s = drv.submit(q, [{ writable: 64 }, { writable: 32 }]);
  const u = await drv.waitUsed(q);
  assertEquals(u, { id: s.head, len: 96 });
  const bytes = [
    ...m.mem.u8.subarray(s.addrs[0], s.addrs[0] + 64),
    ...m.mem.u8.subarray(s.addrs[1], s.addrs[1] + 32),
  ];
  assert(bytes.some((b) => b !== 0xEE) && new Set(bytes).size > 20, "looks random");
  assert(m.irq.level(10));
});

Deno.test("RngDevice caps one request at 64 KiB", async () => {
  const { drv } = setup();
  const q = drv.queues[0];
  drv.submit(q, [{ writable: 100_000 }]);
  assertEquals((await drv.waitUsed(q)).len, RNG_MAX_REQUEST_BYTES);
});

Deno.test("RngDevice returns a chain without writable buffers empty", async () => {
  const { drv } = setup();
  const q = drv.queues[0];
  drv.submit(q, [{ data: new Uint8Array(4) }]);
  assertEquals((await drv.waitUsed(q)).len, 0);
});
