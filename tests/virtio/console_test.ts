/**
 * Tests for virtio-console (virtio 1.x §5.3): transmit to the backend, receive from it (input
 * held while the guest has no buffers, split across small buffers, bounded when nobody reads),
 * and the emergency-write register.
 */
import { assert, assertEquals } from "../assert.ts";
import {
  CONSOLE_INPUT_LIMIT_BYTES,
  CONSOLE_MAX_REQUEST_BYTES,
  type ConsoleBackend,
  ConsoleDevice,
  VIRTIO_CONSOLE_F_SIZE,
} from "../../lib/virtio/console.ts";
import { VIRTIO_CONFIG_S_NEEDS_RESET } from "../../lib/virtio/virtio_device.ts";
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT } from "../../lib/virtio/virtqueue.ts";
import { captureLog, TestMachine, VirtioDriver } from "./virtio_driver.ts";

class FakeTerminal implements ConsoleBackend {
  out: number[] = [];
  input: (b: Uint8Array) => void = () => {};
  write(bytes: Uint8Array): void {
    this.out.push(...bytes);
  }
  onInput(cb: (b: Uint8Array) => void): void {
    this.input = cb;
  }
  type(s: string): void {
    this.input(new TextEncoder().encode(s));
  }
  text(): string {
    return new TextDecoder().decode(new Uint8Array(this.out));
  }
}

function setup() {
  const m = new TestMachine();
  const term = new FakeTerminal();
  const { slot } = m.plug(new ConsoleDevice(term), 5);
  return { m, term, drv: new VirtioDriver(m, slot) };
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("ConsoleDevice transmits chains of several buffers in order", async () => {
  const { drv, term } = setup();
  drv.start(2);
  drv.submit(drv.queues[1], [{ data: enc("hello, ") }, { data: enc("world") }], { notify: false });
  drv.submit(drv.queues[1], [{ data: enc("\n") }], { indirect: true });
  assertEquals(term.text(), "hello, world\n");
  assertEquals((await drv.waitUsed(drv.queues[1])).len, 0);
});

Deno.test("ConsoleDevice holds input until the driver posts receive buffers", async () => {
  const { drv, term, m } = setup();
  term.type("typed early");
  drv.start(2);
  const rx = drv.queues[0];
  const s = drv.submit(rx, [{ writable: 64 }]);
  const u = await drv.waitUsed(rx);
  assertEquals(u.id, s.head);
  assertEquals(dec(m.mem.u8.subarray(s.addrs[0], s.addrs[0] + u.len)), "typed early");
});

Deno.test("ConsoleDevice splits input across small receive buffers", () => {
  const { drv, term, m } = setup();
  drv.start(2);
  const rx = drv.queues[0];
  const a = drv.submit(rx, [{ writable: 4 }]);
  const b = drv.submit(rx, [{ writable: 2 }, { writable: 2 }]);
  term.type("abcdefghij");
  const ua = drv.pollUsed(rx)!;
  const ub = drv.pollUsed(rx)!;
  assertEquals([ua.len, ub.len], [4, 4]);
  assertEquals(dec(m.mem.u8.subarray(a.addrs[0], a.addrs[0] + 4)), "abcd");
  assertEquals(
    dec(m.mem.u8.subarray(b.addrs[0], b.addrs[0] + 2)) + dec(m.mem.u8.subarray(b.addrs[1], b.addrs[1] + 2)),
    "efgh",
  );
  const c = drv.submit(rx, [{ writable: 16 }]);
  assertEquals(drv.pollUsed(rx)!.len, 2);
  assertEquals(dec(m.mem.u8.subarray(c.addrs[0], c.addrs[0] + 2)), "ij");
  assert(m.irq.level(5));
});

Deno.test("ConsoleDevice drops input beyond its limit with one warning", async () => {
  const { term } = setup();
  const { lines } = await captureLog(() => {
    term.input(new Uint8Array(CONSOLE_INPUT_LIMIT_BYTES));
    term.type("x");
    term.type("y");
  });
  assertEquals(lines.length, 1);
});

Deno.test("ConsoleDevice emergency write outputs one character per config write", () => {
  const { drv, term } = setup();
  drv.configWrite(8, 4, 0x4F);
  drv.configWrite(8, 4, 0x100 | 0x4B);
  assertEquals(term.text(), "OK");
  assertEquals(drv.configRead(8, 4), 0);
});

Deno.test("ConsoleDevice takes at most CONSOLE_MAX_REQUEST_BYTES from a chain that lists all of RAM 1024 times", async () => {
  // Issue #8: this chain claims 1024 x 64 MiB; it used to be allocated whole (RangeError).
  const m = new TestMachine(64 << 20);
  let written = 0;
  let writes = 0;
  const { slot } = m.plug(
    new ConsoleDevice({ write: (b) => (written += b.length, writes++), onInput() {} }),
    5,
  );
  const drv = new VirtioDriver(m, slot);
  drv.start(2);
  const tx = drv.queues[1];
  const table = m.alloc(16 * 1024, 16);
  for (let i = 0; i < 1024; i++) {
    drv.writeDesc(table, i, 0, m.mem.sizeBytes, i < 1023 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
  }
  drv.writeDesc(tx.desc, 0, table, 16 * 1024, VIRTQ_DESC_F_INDIRECT, 0);
  drv.publish(tx, 0);
  const { lines } = await captureLog(() => drv.notify(tx));
  assertEquals(lines.length, 1, lines.join("\n"));
  assertEquals(written, CONSOLE_MAX_REQUEST_BYTES);
  assertEquals(writes, 1);
  assertEquals(drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
  assertEquals((await drv.waitUsed(tx)).id, 0);
});

Deno.test("ConsoleDevice offers VIRTIO_CONSOLE_F_SIZE with the terminal's size and signals resizes", () => {
  const m = new TestMachine();
  const term = new FakeTerminal();
  let size = { columns: 100, rows: 30 };
  let resized = () => {};
  const sized: ConsoleBackend = {
    write: (b) => term.write(b),
    onInput: (cb) => term.onInput(cb),
    size: () => size,
    onResize: (cb) => resized = cb,
  };
  const { slot } = m.plug(new ConsoleDevice(sized), 5);
  const drv = new VirtioDriver(m, slot);
  assert((drv.deviceFeatures() & (1n << BigInt(VIRTIO_CONSOLE_F_SIZE))) !== 0n);
  assertEquals([drv.configRead(0, 2), drv.configRead(2, 2)], [100, 30], "cols, rows (§5.3.4)");
  drv.start(2);
  assert((drv.readIsr() & 2) !== 0, "a configuration interrupt at DRIVER_OK: Linux reads the size then");
  size = { columns: 132, rows: 43 };
  resized();
  assert((drv.readIsr() & 2) !== 0, "and one after each resize");
  assertEquals([drv.configRead(0, 2), drv.configRead(2, 2)], [132, 43]);
  // Without a size (stdout not a terminal), the feature is not offered.
  const plain = new TestMachine();
  const other = plain.plug(new ConsoleDevice(new FakeTerminal()), 5);
  assertEquals(
    new VirtioDriver(plain, other.slot).deviceFeatures() & (1n << BigInt(VIRTIO_CONSOLE_F_SIZE)),
    0n,
  );
});
