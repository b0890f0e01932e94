/**
 * Tests for the split virtqueue on its own (virtio 1.x §2.7): chains direct and indirect, the
 * scatter-gather copies, used ring and interrupt suppression (NO_INTERRUPT, EVENT_IDX), and every
 * malformation a guest can write ending in a VirtqueueError rather than a host exception or hang.
 */
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { GuestMemory } from "../../lib/machine/guest_memory.ts";
import {
  DescChain,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  Virtqueue,
  VirtqueueError,
} from "../../lib/virtio/virtqueue.ts";

const N = 8;
const DESC = 0x1000;
const AVAIL = 0x2000;
const USED = 0x3000;
const R = 0;
const W = VIRTQ_DESC_F_WRITE;
const NEXT = VIRTQ_DESC_F_NEXT;

function setup(opts: { eventIdx?: boolean; indirect?: boolean; ram?: number } = {}) {
  const mem = new GuestMemory(opts.ram ?? 1 << 20);
  const q = new Virtqueue(mem, 0, N);
  q.descAddr = DESC;
  q.driverAddr = AVAIL;
  q.deviceAddr = USED;
  q.eventIdx = opts.eventIdx ?? false;
  q.indirectDesc = opts.indirect ?? true;
  q.enable();
  let availIdx = 0;
  const desc = (table: number, i: number, addr: number | bigint, len: number, flags: number, next = 0) => {
    const d = table + 16 * i;
    mem.view.setBigUint64(d, BigInt(addr), true);
    mem.view.setUint32(d + 8, len, true);
    mem.view.setUint16(d + 12, flags, true);
    mem.view.setUint16(d + 14, next, true);
  };
  const publish = (head: number) => {
    mem.view.setUint16(AVAIL + 4 + 2 * (availIdx % N), head, true);
    availIdx = (availIdx + 1) & 0xFFFF;
    mem.view.setUint16(AVAIL + 2, availIdx, true);
  };
  return { mem, q, desc, publish, chain: new DescChain(mem, 2) };
}

Deno.test("Virtqueue pops a direct chain and copies across its buffers", () => {
  const { mem, q, desc, publish, chain } = setup();
  mem.u8.set([1, 2, 3], 0x8000);
  mem.u8.set([4, 5], 0x9000);
  desc(DESC, 3, 0x8000, 3, R | NEXT, 5);
  desc(DESC, 5, 0x9000, 2, R | NEXT, 0);
  desc(DESC, 0, 0xA000, 4, W | NEXT, 1);
  desc(DESC, 1, 0xB000, 4, W);
  publish(3);
  assert(q.hasAvailable());
  assert(q.pop(chain));
  assertEquals([
    chain.head,
    chain.readableCount,
    chain.readableBytes,
    chain.writableCount,
    chain.writableBytes,
  ], [3, 2, 5, 2, 8]);
  const got = new Uint8Array(4);
  assertEquals(chain.readBytes(1, got), 4);
  assertEquals([...got], [2, 3, 4, 5]);
  assertEquals(chain.writeBytes(2, new Uint8Array([9, 9, 9, 9, 9, 9, 9])), 6);
  assertEquals([...mem.u8.subarray(0xA000, 0xA004)], [0, 0, 9, 9]);
  assertEquals([...mem.u8.subarray(0xB000, 0xB004)], [9, 9, 9, 9]);
  assert(!q.pop(chain), "ring empty");
});

Deno.test("Virtqueue follows direct descriptors into one indirect table", () => {
  const { q, desc, publish, chain } = setup();
  desc(DESC, 0, 0x8000, 16, R | NEXT, 2);
  desc(DESC, 2, 0x20000, 3 * 16, VIRTQ_DESC_F_INDIRECT | W); // WRITE on the table itself is ignored
  desc(0x20000, 0, 0x9000, 100, R | NEXT, 2);
  desc(0x20000, 2, 0xA000, 512, W | NEXT, 1);
  desc(0x20000, 1, 0xB000, 1, W);
  publish(0);
  assert(q.pop(chain));
  assertEquals([chain.readableCount, chain.readableBytes, chain.writableCount, chain.writableBytes], [
    2,
    116,
    2,
    513,
  ]);
});

Deno.test("Virtqueue pushUsed fills the used ring and honours VIRTQ_AVAIL_F_NO_INTERRUPT", () => {
  const { mem, q, desc, publish, chain } = setup();
  desc(DESC, 4, 0x8000, 8, W);
  publish(4);
  assert(q.pop(chain));
  q.pushUsed(chain.head, 8);
  assertEquals(mem.view.getUint16(USED + 2, true), 1);
  assertEquals([mem.view.getUint32(USED + 4, true), mem.view.getUint32(USED + 8, true)], [4, 8]);
  assert(q.needsInterrupt());
  assert(!q.needsInterrupt(), "nothing new since");
  mem.view.setUint16(AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT, true);
  publish(4);
  assert(q.pop(chain));
  q.pushUsed(chain.head, 0);
  assert(!q.needsInterrupt());
});

Deno.test("Virtqueue with EVENT_IDX interrupts only when used_event is crossed and publishes avail_event", () => {
  const { mem, q, desc, publish, chain } = setup({ eventIdx: true });
  desc(DESC, 0, 0x8000, 8, W);
  const usedEvent = (v: number) => mem.view.setUint16(AVAIL + 4 + 2 * N, v, true);
  usedEvent(1); // interrupt me when used.idx passes 1, i.e. becomes 2
  for (let i = 0; i < 3; i++) publish(0);
  assert(q.pop(chain));
  assertEquals(mem.view.getUint16(USED + 4 + 8 * N, true), 1, "avail_event follows our position");
  q.pushUsed(0, 0);
  assert(!q.needsInterrupt(), "used.idx 1 has not passed used_event 1");
  assert(q.pop(chain));
  q.pushUsed(0, 0);
  assert(q.needsInterrupt(), "used.idx 2 passed it");
  assert(q.pop(chain));
  q.pushUsed(0, 0);
  assert(!q.needsInterrupt(), "already signalled past used_event");
  assertEquals(mem.view.getUint16(USED + 4 + 8 * N, true), 3);
});

Deno.test("Virtqueue rewind gives popped chains back", () => {
  const { q, desc, publish, chain } = setup();
  desc(DESC, 0, 0x8000, 8, W);
  desc(DESC, 1, 0x8000, 8, W);
  publish(0);
  publish(1);
  assert(q.pop(chain) && q.pop(chain));
  q.rewind(2);
  assert(q.pop(chain));
  assertEquals(chain.head, 0);
});

/** Each case writes a malformed ring; popping it must throw VirtqueueError and nothing else. */
const MALFORMED: [string, (s: ReturnType<typeof setup>) => void][] = [
  ["head index out of range", (s) => s.publish(N)],
  ["next index out of range", (s) => {
    s.desc(DESC, 0, 0x8000, 8, R | NEXT, 200);
    s.publish(0);
  }],
  ["a loop in the next chain", (s) => {
    s.desc(DESC, 0, 0x8000, 8, R | NEXT, 1);
    s.desc(DESC, 1, 0x8000, 8, R | NEXT, 0);
    s.publish(0);
  }],
  ["a descriptor pointing at itself", (s) => {
    s.desc(DESC, 2, 0x8000, 8, R | NEXT, 2);
    s.publish(2);
  }],
  ["a buffer outside RAM", (s) => {
    s.desc(DESC, 0, 0x200000, 8, R);
    s.publish(0);
  }],
  ["a buffer whose address + length passes 4 GiB", (s) => {
    s.desc(DESC, 0, 0xFFFF_F000, 0x2000, W);
    s.publish(0);
  }],
  ["a 64-bit buffer address", (s) => {
    s.desc(DESC, 0, 0x1_0000_8000n, 8, W);
    s.publish(0);
  }],
  ["a buffer running off the end of RAM", (s) => {
    s.desc(DESC, 0, 0xFF000, 0x1001, W);
    s.publish(0);
  }],
  ["an indirect table length not a multiple of 16", (s) => {
    s.desc(DESC, 0, 0x20000, 20, VIRTQ_DESC_F_INDIRECT);
    s.publish(0);
  }],
  ["an empty indirect table", (s) => {
    s.desc(DESC, 0, 0x20000, 0, VIRTQ_DESC_F_INDIRECT);
    s.publish(0);
  }],
  ["a huge indirect table", (s) => {
    s.desc(DESC, 0, 0x20000, 16 * 4096, VIRTQ_DESC_F_INDIRECT);
    s.publish(0);
  }],
  ["an indirect table outside RAM", (s) => {
    s.desc(DESC, 0, 0xFFFF0, 32, VIRTQ_DESC_F_INDIRECT);
    s.publish(0);
  }],
  ["a nested indirect descriptor", (s) => {
    s.desc(DESC, 0, 0x20000, 32, VIRTQ_DESC_F_INDIRECT);
    s.desc(0x20000, 0, 0x21000, 16, VIRTQ_DESC_F_INDIRECT);
    s.publish(0);
  }],
  ["a loop inside an indirect table", (s) => {
    s.desc(DESC, 0, 0x20000, 32, VIRTQ_DESC_F_INDIRECT);
    s.desc(0x20000, 0, 0x8000, 8, R | NEXT, 1);
    s.desc(0x20000, 1, 0x8000, 8, R | NEXT, 0);
    s.publish(0);
  }],
  ["an index past the indirect table", (s) => {
    s.desc(DESC, 0, 0x20000, 32, VIRTQ_DESC_F_INDIRECT);
    s.desc(0x20000, 0, 0x8000, 8, R | NEXT, 2);
    s.publish(0);
  }],
  ["INDIRECT together with NEXT", (s) => {
    s.desc(DESC, 0, 0x20000, 16, VIRTQ_DESC_F_INDIRECT | NEXT, 1);
    s.desc(0x20000, 0, 0x8000, 8, R);
    s.publish(0);
  }],
  ["a readable buffer after a writable one", (s) => {
    s.desc(DESC, 0, 0x8000, 8, W | NEXT, 1);
    s.desc(DESC, 1, 0x9000, 8, R);
    s.publish(0);
  }],
  ["avail idx jumping by more than the queue size", (s) => {
    s.desc(DESC, 0, 0x8000, 8, R);
    s.mem.view.setUint16(AVAIL + 2, N + 1, true);
  }],
];

for (const [what, build] of MALFORMED) {
  Deno.test(`Virtqueue pop throws VirtqueueError for ${what}`, () => {
    const s = setup();
    build(s);
    assertThrows(() => s.q.pop(s.chain), VirtqueueError);
  });
}

Deno.test("Virtqueue pop throws VirtqueueError for an indirect descriptor that was not negotiated", () => {
  const s = setup({ indirect: false });
  s.desc(DESC, 0, 0x20000, 16, VIRTQ_DESC_F_INDIRECT);
  s.desc(0x20000, 0, 0x8000, 8, R);
  s.publish(0);
  assertThrows(() => s.q.pop(s.chain), VirtqueueError);
});

Deno.test("Virtqueue enable refuses bad sizes, misaligned rings and rings outside RAM", () => {
  const mem = new GuestMemory(1 << 20);
  const cases: [number, number, number, number][] = [
    [6, DESC, AVAIL, USED], // not a power of two
    [0, DESC, AVAIL, USED],
    [16, DESC, AVAIL, USED], // above the device maximum
    [N, DESC + 8, AVAIL, USED],
    [N, DESC, AVAIL + 1, USED],
    [N, DESC, AVAIL, USED + 2],
    [N, 0xFFFC0, AVAIL, USED],
    [N, DESC, 0x1_0000_2000, USED],
    [N, DESC, AVAIL, 0xFFFFF000],
  ];
  for (const [size, d, a, u] of cases) {
    const q = new Virtqueue(mem, 0, N);
    Object.assign(q, { size, descAddr: d, driverAddr: a, deviceAddr: u });
    assertThrows(() => q.enable(), VirtqueueError);
    assert(!q.enabled);
  }
});

Deno.test("Virtqueue accepts a chain exactly as long as the queue", () => {
  const { q, desc, publish, chain } = setup();
  for (let i = 0; i < N; i++) desc(DESC, i, 0x8000 + 16 * i, 16, W | (i + 1 < N ? NEXT : 0), i + 1);
  publish(0);
  assert(q.pop(chain));
  assertEquals(chain.writableCount, N);
});
