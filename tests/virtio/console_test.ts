/**
 * Tests for virtio-console (virtio 1.x §5.3): transmit to the backend, receive from it (input
 * held while the guest has no buffers, split across small buffers, bounded when nobody reads),
 * and the emergency-write register.
 */
import { assert, assertEquals } from "../assert.ts";
import { CONSOLE_INPUT_LIMIT_BYTES, type ConsoleBackend, ConsoleDevice } from "../../lib/virtio/console.ts";
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
