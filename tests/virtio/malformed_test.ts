/**
 * Malformed rings written on purpose against every device (STYLE rule 8: a bad request fails that
 * request or resets that device; the host never crashes or hangs). Each case must end in
 * DEVICE_NEEDS_RESET with exactly one warning and a config interrupt, no exception escaping the
 * MMIO write, and a device that works again after the driver resets it.
 */
import { assert, assertEquals } from "../assert.ts";
import { FileDisk } from "../../lib/backends/file_disk.ts";
import { HostEntropy } from "../../lib/backends/entropy.ts";
import { BlockDevice, VIRTIO_BLK_T_IN } from "../../lib/virtio/block.ts";
import { ConsoleDevice } from "../../lib/virtio/console.ts";
import { NetDevice } from "../../lib/virtio/net.ts";
import { RngDevice } from "../../lib/virtio/rng.ts";
import { VIRTIO_CONFIG_S_NEEDS_RESET, type VirtioDevice } from "../../lib/virtio/virtio_device.ts";
import { VIRTIO_PCI_ISR_CONFIG } from "../../lib/virtio/virtio_pci.ts";
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from "../../lib/virtio/virtqueue.ts";
import {
  type Buf,
  captureLog,
  type DriverQueue,
  settle,
  TestMachine,
  VirtioDriver,
} from "./virtio_driver.ts";

const NEXT = VIRTQ_DESC_F_NEXT;
const W = VIRTQ_DESC_F_WRITE;
const IND = VIRTQ_DESC_F_INDIRECT;

interface DeviceCase {
  name: string;
  make(): Promise<{ device: VirtioDevice; close(): Promise<void> }>;
  queues: number;
  /** The queue the driver kicks with work. */
  queue: number;
  /** A well-formed request on that queue. */
  good: Buf[];
}

const silentConsole = { write() {}, onInput() {} };
const silentWire = { send() {}, onFrame() {} };

const DEVICES: DeviceCase[] = [
  {
    name: "ConsoleDevice",
    make: () => Promise.resolve({ device: new ConsoleDevice(silentConsole), close: () => Promise.resolve() }),
    queues: 2,
    queue: 1,
    good: [{ data: new Uint8Array([0x41]) }],
  },
  {
    name: "BlockDevice",
    make: async () => {
      const path = await Deno.makeTempFile();
      await Deno.writeFile(path, new Uint8Array(8192));
      const disk = await FileDisk.open(path);
      return {
        device: new BlockDevice(disk),
        close: async () => {
          await disk.close();
          await Deno.remove(path);
        },
      };
    },
    queues: 1,
    queue: 0,
    good: [{ data: new Uint8Array(16).fill(VIRTIO_BLK_T_IN, 0, 1) }, { writable: 512 }, { writable: 1 }],
  },
  {
    name: "NetDevice",
    make: () => Promise.resolve({ device: new NetDevice(silentWire), close: () => Promise.resolve() }),
    queues: 2,
    queue: 1,
    good: [{ data: new Uint8Array(12) }, { data: new Uint8Array(60) }],
  },
  {
    name: "RngDevice",
    make: () => Promise.resolve({ device: new RngDevice(new HostEntropy()), close: () => Promise.resolve() }),
    queues: 1,
    queue: 0,
    good: [{ writable: 16 }],
  },
];

/** Each writes a malformed chain (or ring) on `q` and publishes it. */
const MALFORMED: [string, (d: VirtioDriver, q: DriverQueue) => void][] = [
  ["a descriptor index out of range", (d, q) => d.publish(q, q.size + 3)],
  ["a loop in the next chain", (d, q) => {
    d.writeDesc(q.desc, 0, 0x8000, 8, NEXT, 1);
    d.writeDesc(q.desc, 1, 0x8000, 8, NEXT, 0);
    d.publish(q, 0);
  }],
  ["an address outside RAM", (d, q) => {
    d.writeDesc(q.desc, 0, d.m.mem.sizeBytes + 0x1000, 16, W, 0);
    d.publish(q, 0);
  }],
  ["address + length overflowing past 4 GiB", (d, q) => {
    d.writeDesc(q.desc, 0, 0xFFFF_FFF0, 0x100, W, 0);
    d.publish(q, 0);
  }],
  ["an indirect table with a bad length", (d, q) => {
    d.writeDesc(q.desc, 0, 0x8000, 24, IND, 0);
    d.publish(q, 0);
  }],
  ["a nested indirect table", (d, q) => {
    d.writeDesc(q.desc, 0, 0x8000, 16, IND, 0);
    d.writeDesc(0x8000, 0, 0x9000, 16, IND, 0);
    d.publish(q, 0);
  }],
  ["avail idx jumping by more than the queue size", (d, q) => {
    d.writeDesc(q.desc, 0, 0x8000, 8, W, 0);
    d.setAvailIdx(q, q.size + 2);
  }],
];

for (const dev of DEVICES) {
  for (const [what, corrupt] of MALFORMED) {
    Deno.test(`${dev.name} needs reset after ${what} and recovers`, async () => {
      const { device, close } = await dev.make();
      try {
        const m = new TestMachine();
        const { slot } = m.plug(device, 10);
        const drv = new VirtioDriver(m, slot);
        drv.start(dev.queues);
        const { lines } = await captureLog(async () => {
          corrupt(drv, drv.queues[dev.queue]);
          drv.notify(drv.queues[dev.queue]);
          drv.notify(drv.queues[dev.queue]);
          await settle(5);
        });
        assertEquals(lines.length, 1, lines.join("\n"));
        assertEquals(drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_CONFIG_S_NEEDS_RESET);
        assert(m.irq.level(10));
        assertEquals(drv.readIsr() & VIRTIO_PCI_ISR_CONFIG, VIRTIO_PCI_ISR_CONFIG);
        drv.reset();
        drv.start(dev.queues);
        const s = drv.submit(drv.queues[dev.queue], dev.good);
        assertEquals((await drv.waitUsed(drv.queues[dev.queue])).id, s.head);
        assertEquals(drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
      } finally {
        await close();
      }
    });
  }

  Deno.test(`${dev.name} needs reset when a queue size is not a power of two`, async () => {
    const { device, close } = await dev.make();
    try {
      const m = new TestMachine();
      const { slot } = m.plug(device, 10);
      const drv = new VirtioDriver(m, slot);
      assert(drv.negotiate(drv.deviceFeatures()));
      const { lines } = await captureLog(() => drv.setupQueue(dev.queue, 3));
      assertEquals(lines.length, 1);
      assertEquals(drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_CONFIG_S_NEEDS_RESET);
    } finally {
      await close();
    }
  });
}

Deno.test("NetDevice needs reset when a frame arrives on a malformed receive ring", async () => {
  let deliver: (f: Uint8Array) => void = () => {};
  const m = new TestMachine();
  const { slot } = m.plug(new NetDevice({ send() {}, onFrame: (cb) => (deliver = cb) }), 10);
  const drv = new VirtioDriver(m, slot);
  drv.start(2);
  const rx = drv.queues[0];
  drv.writeDesc(rx.desc, 0, 0x8000, 64, W | NEXT, 0);
  drv.publish(rx, 0);
  const { lines } = await captureLog(() => deliver(new Uint8Array(60)));
  assertEquals(lines.length, 1);
  assertEquals(drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_CONFIG_S_NEEDS_RESET);
});

/**
 * The chain from issue #8: one indirect table of VIRTQ_MAX_INDIRECT descriptors, each covering all
 * of RAM (readable or writable), so the chain claims 1024 x RAM bytes. Every device must bound its
 * work per request: the notify returns (no RangeError out of the MMIO store), the request is
 * answered or refused, and the device still works.
 */
for (const dev of DEVICES) {
  for (const writable of [false, true]) {
    Deno.test(`${dev.name} bounds a chain that lists all of RAM 1024 times (${writable ? "writable" : "readable"})`, async () => {
      const { device, close } = await dev.make();
      try {
        const m = new TestMachine(64 << 20);
        const { slot } = m.plug(device, 10);
        const drv = new VirtioDriver(m, slot);
        drv.start(dev.queues);
        const q = drv.queues[dev.queue];
        const table = m.alloc(16 * 1024, 16);
        for (let i = 0; i < 1024; i++) {
          drv.writeDesc(table, i, 0, m.mem.sizeBytes, (writable ? W : 0) | (i < 1023 ? NEXT : 0), i + 1);
        }
        drv.writeDesc(q.desc, 0, table, 16 * 1024, IND, 0);
        q.nextDesc = 1;
        drv.publish(q, 0);
        await captureLog(async () => {
          drv.notify(q);
          await settle(20);
        });
        // Whatever the device made of it, it answers a good request now or after a reset.
        if ((drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0) {
          drv.reset();
          drv.start(dev.queues);
        } else {
          while (drv.pollUsed(q) !== null);
        }
        const s = drv.submit(drv.queues[dev.queue], dev.good);
        assertEquals((await drv.waitUsed(drv.queues[dev.queue])).id, s.head);
      } finally {
        await close();
      }
    });
  }
}

Deno.test("VirtioPci turns any exception a device throws into DEVICE_NEEDS_RESET, never out of the MMIO write", async () => {
  const device = new ConsoleDevice(silentConsole);
  let boom = false;
  const m = new TestMachine();
  const { slot } = m.plug({
    deviceType: device.deviceType,
    name: "thrower",
    queueSizes: device.queueSizes,
    features: device.features,
    configSizeBytes: device.configSizeBytes,
    configRead: () => {
      throw new TypeError("config read bug");
    },
    configWrite: () => {},
    activate: (ctx) => device.activate(ctx),
    reset: () => device.reset(),
    onQueueNotify: (q) => {
      if (boom) throw new RangeError("Array buffer allocation failed");
      device.onQueueNotify(q);
    },
  } as VirtioDevice, 10);
  const drv = new VirtioDriver(m, slot);
  drv.start(2);
  boom = true;
  const { lines } = await captureLog(() => {
    drv.submit(drv.queues[1], [{ data: new Uint8Array([0x41]) }]);
    drv.notify(drv.queues[1]);
  });
  assertEquals(lines.length, 1, lines.join("\n"));
  assert(lines[0].includes("RangeError"), lines[0]);
  assertEquals(drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_CONFIG_S_NEEDS_RESET);
  drv.reset();
  boom = false;
  drv.start(2);
  const s = drv.submit(drv.queues[1], [{ data: new Uint8Array([0x42]) }]);
  assertEquals((await drv.waitUsed(drv.queues[1])).id, s.head);
  const { lines: l2 } = await captureLog(() => drv.configRead(0, 4));
  assertEquals(l2.length, 1);
  assertEquals(drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_CONFIG_S_NEEDS_RESET);
});
