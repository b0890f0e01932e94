/**
 * Tests for virtio-blk (virtio 1.x §5.2) end to end: the test driver submits requests through
 * PCI/MMIO into a BlockDevice over a FileDisk on a real temporary file. Covers IN/OUT/FLUSH/GET_ID,
 * any descriptor layout, IOERR for requests past the end and writes to a read-only disk (whose
 * file must stay byte-identical), UNSUPP, and a reset while a read is in flight.
 */
import { assert, assertEquals } from "../assert.ts";
import { FileDisk } from "../../lib/backends/file_disk.ts";
import {
  BlockDevice,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from "../../lib/virtio/block.ts";
import { bit, VIRTIO_CONFIG_S_NEEDS_RESET } from "../../lib/virtio/virtio_device.ts";
import { type Buf, captureLog, settle, TestMachine, VirtioDriver } from "./virtio_driver.ts";

const SECTORS = 64;

async function sha256(path: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(path)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

function pattern(len: number, seed = 0): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 7 + (i >> 9) + seed) & 0xFF;
  return b;
}

function header(type: number, sector: number | bigint): Uint8Array {
  const h = new Uint8Array(16);
  const v = new DataView(h.buffer);
  v.setUint32(0, type, true);
  v.setBigUint64(8, BigInt(sector), true);
  return h;
}

async function withDisk(
  opts: { readOnly?: boolean },
  fn: (t: { drv: VirtioDriver; m: TestMachine; path: string; wakes: () => number }) => Promise<void>,
): Promise<void> {
  const path = await Deno.makeTempFile({ suffix: ".img" });
  await Deno.writeFile(path, pattern(SECTORS * 512));
  const disk = await FileDisk.open(path, opts);
  try {
    const m = new TestMachine();
    let wakes = 0;
    const device = new BlockDevice(disk, { serial: "lguest-disk-0" });
    const { slot } = m.plug(device, 11, { wake: () => wakes++ });
    const drv = new VirtioDriver(m, slot);
    drv.start(1);
    await fn({ drv, m, path, wakes: () => wakes });
  } finally {
    await disk.close();
    await Deno.remove(path);
  }
}

/** Submits header, data buffers and a status byte; returns the status, used length and data read. */
async function request(
  drv: VirtioDriver,
  type: number,
  sector: number | bigint,
  data: Buf[],
  indirect = false,
) {
  const bufs: Buf[] = [{ data: header(type, sector) }, ...data, { writable: 1 }];
  const s = drv.submit(drv.queues[0], bufs, { indirect });
  const used = await drv.waitUsed(drv.queues[0]);
  assertEquals(used.id, s.head);
  const mem = drv.m.mem.u8;
  const status = mem[s.addrs[s.addrs.length - 1]];
  const read = data.flatMap((b, i) =>
    "writable" in b ? [...mem.subarray(s.addrs[i + 1], s.addrs[i + 1] + b.writable)] : []
  );
  return { status, len: used.len, read: new Uint8Array(read) };
}

Deno.test("BlockDevice reports capacity, segment limit and block size with the offered features", async () => {
  await withDisk({}, async ({ drv }) => {
    const f = drv.deviceFeatures();
    for (const b of [VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH]) {
      assert((f & bit(b)) !== 0n);
    }
    assertEquals(f & bit(VIRTIO_BLK_F_RO), 0n);
    assertEquals(drv.configRead(0, 4), SECTORS);
    assertEquals(drv.configRead(4, 4), 0);
    assertEquals(drv.configRead(12, 4), 254);
    assertEquals(drv.configRead(20, 4), 512);
    await Promise.resolve();
  });
});

Deno.test("BlockDevice reads sectors from the file, direct and indirect, across buffers", async () => {
  await withDisk({}, async ({ drv }) => {
    const want = pattern(SECTORS * 512).subarray(3 * 512, 6 * 512);
    const r = await request(drv, VIRTIO_BLK_T_IN, 3, [{ writable: 512 }, { writable: 1024 }]);
    assertEquals(r.status, VIRTIO_BLK_S_OK);
    assertEquals(r.len, 1536 + 1);
    assertEquals(r.read, want);
    const r2 = await request(drv, VIRTIO_BLK_T_IN, 3, [{ writable: 100 }, { writable: 1436 }], true);
    assertEquals(r2.status, VIRTIO_BLK_S_OK);
    assertEquals(r2.read, want);
  });
});

Deno.test("BlockDevice completes asynchronously, interrupting and waking the machine", async () => {
  await withDisk({}, async ({ drv, m, wakes }) => {
    drv.submit(drv.queues[0], [{ data: header(VIRTIO_BLK_T_IN, 0) }, { writable: 512 }, { writable: 1 }]);
    assertEquals(drv.usedIdx(drv.queues[0]), 0, "file I/O has not completed inside the notify");
    assert(!m.irq.level(11));
    await drv.waitUsed(drv.queues[0]);
    assert(m.irq.level(11));
    assertEquals(wakes(), 1);
  });
});

Deno.test("BlockDevice writes reach the file and flush succeeds", async () => {
  await withDisk({}, async ({ drv, path }) => {
    const data = pattern(1024, 99);
    const w = await request(drv, VIRTIO_BLK_T_OUT, SECTORS - 2, [{ data: data.subarray(0, 300) }, {
      data: data.subarray(300),
    }]);
    assertEquals([w.status, w.len], [VIRTIO_BLK_S_OK, 1]);
    const f = await request(drv, VIRTIO_BLK_T_FLUSH, 0, []);
    assertEquals(f.status, VIRTIO_BLK_S_OK);
    const file = await Deno.readFile(path);
    assertEquals(file.subarray((SECTORS - 2) * 512), data);
    const r = await request(drv, VIRTIO_BLK_T_IN, SECTORS - 2, [{ writable: 1024 }]);
    assertEquals(r.read, data);
  });
});

Deno.test("BlockDevice accepts header and data in one descriptor (any layout)", async () => {
  await withDisk({}, async ({ drv, path }) => {
    const data = pattern(512, 5);
    const one = new Uint8Array(16 + 512);
    one.set(header(VIRTIO_BLK_T_OUT, 1));
    one.set(data, 16);
    drv.submit(drv.queues[0], [{ data: one }, { writable: 1 }]);
    await drv.waitUsed(drv.queues[0]);
    assertEquals((await Deno.readFile(path)).subarray(512, 1024), data);
  });
});

Deno.test("BlockDevice GET_ID returns the 20-byte serial", async () => {
  await withDisk({}, async ({ drv }) => {
    const r = await request(drv, VIRTIO_BLK_T_GET_ID, 0, [{ writable: 20 }]);
    assertEquals(r.status, VIRTIO_BLK_S_OK);
    assertEquals(r.len, 21);
    assertEquals(new TextDecoder().decode(r.read.subarray(0, 13)), "lguest-disk-0");
    assertEquals([...r.read.subarray(13)], [0, 0, 0, 0, 0, 0, 0]);
  });
});

Deno.test("BlockDevice fails requests past the end, of partial sectors or unknown type cleanly", async () => {
  await withDisk({}, async ({ drv, path }) => {
    const before = await sha256(path);
    assertEquals(
      (await request(drv, VIRTIO_BLK_T_IN, SECTORS - 1, [{ writable: 1024 }])).status,
      VIRTIO_BLK_S_IOERR,
    );
    assertEquals(
      (await request(drv, VIRTIO_BLK_T_IN, SECTORS, [{ writable: 512 }])).status,
      VIRTIO_BLK_S_IOERR,
    );
    assertEquals(
      (await request(drv, VIRTIO_BLK_T_IN, 1n << 40n, [{ writable: 512 }])).status,
      VIRTIO_BLK_S_IOERR,
    );
    assertEquals((await request(drv, VIRTIO_BLK_T_IN, 0, [{ writable: 100 }])).status, VIRTIO_BLK_S_IOERR);
    assertEquals(
      (await request(drv, VIRTIO_BLK_T_OUT, SECTORS - 1, [{ data: pattern(1024) }])).status,
      VIRTIO_BLK_S_IOERR,
    );
    assertEquals((await request(drv, 0x42, 0, [])).status, VIRTIO_BLK_S_UNSUPP);
    // A header too short to parse still gets a status.
    drv.submit(drv.queues[0], [{ data: new Uint8Array(8) }, { writable: 1 }]);
    await drv.waitUsed(drv.queues[0]);
    assertEquals(await sha256(path), before);
    assertEquals(drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
  });
});

Deno.test("BlockDevice on a read-only disk offers F_RO, refuses writes and leaves the file unchanged", async () => {
  await withDisk({ readOnly: true }, async ({ drv, path }) => {
    const before = await sha256(path);
    assert((drv.deviceFeatures() & bit(VIRTIO_BLK_F_RO)) !== 0n);
    assertEquals(
      (await request(drv, VIRTIO_BLK_T_OUT, 0, [{ data: pattern(512, 1) }])).status,
      VIRTIO_BLK_S_IOERR,
    );
    assertEquals((await request(drv, VIRTIO_BLK_T_FLUSH, 0, [])).status, VIRTIO_BLK_S_OK);
    const r = await request(drv, VIRTIO_BLK_T_IN, 0, [{ writable: 512 }]);
    assertEquals([r.status, r.read], [VIRTIO_BLK_S_OK, pattern(512)]);
    assertEquals(await sha256(path), before);
  });
});

Deno.test("BlockDevice serves queued requests in order", async () => {
  await withDisk({}, async ({ drv }) => {
    const q = drv.queues[0];
    const a = drv.submit(q, [{ data: header(VIRTIO_BLK_T_OUT, 4) }, { data: pattern(512, 42) }, {
      writable: 1,
    }], { notify: false });
    const b = drv.submit(q, [{ data: header(VIRTIO_BLK_T_IN, 4) }, { writable: 512 }, { writable: 1 }]);
    assertEquals((await drv.waitUsed(q)).id, a.head);
    assertEquals((await drv.waitUsed(q)).id, b.head);
    assertEquals(drv.m.mem.u8.subarray(b.addrs[1], b.addrs[1] + 512), pattern(512, 42), "read after write");
  });
});

Deno.test("BlockDevice drops an in-flight read when the driver resets the device", async () => {
  await withDisk({}, async ({ drv }) => {
    const q = drv.queues[0];
    const s = drv.submit(q, [{ data: header(VIRTIO_BLK_T_IN, 0) }, { writable: 4096 }, { writable: 1 }]);
    drv.reset();
    await settle(50);
    assertEquals(drv.usedIdx(q), 0, "no used element after reset");
    assert(drv.m.mem.u8.subarray(s.addrs[1], s.addrs[1] + 4096).every((b) => b === 0xEE), "buffer untouched");
    drv.start(1);
    const r = await request(drv, VIRTIO_BLK_T_IN, 0, [{ writable: 512 }]);
    assertEquals(r.read, pattern(512));
  });
});

Deno.test("BlockDevice needs reset for a request without a device-writable status byte", async () => {
  await withDisk({}, async ({ drv }) => {
    const { lines } = await captureLog(async () => {
      drv.submit(drv.queues[0], [{ data: header(VIRTIO_BLK_T_IN, 0) }]);
      await settle();
    });
    assertEquals(lines.length, 1);
    assertEquals(drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_CONFIG_S_NEEDS_RESET);
  });
});
