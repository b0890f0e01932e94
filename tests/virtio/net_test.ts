/**
 * Tests for virtio-net (virtio 1.x §5.1): two devices on two test machines exchanging frames over
 * real loopback TCP through SocketNet, then the receive path alone with a fake backend: mergeable
 * buffers and num_buffers, small buffers, the bounded host-side queue, and malformed transmits;
 * last the offloads as a driver negotiates them: segmentation and checksum completion on transmit,
 * DATA_VALID on receive, and frames asking for offloads that were not negotiated being dropped.
 */
import { assert, assertEquals } from "../assert.ts";
import { SocketNet } from "../../lib/backends/socket_net.ts";
import {
  MAX_FRAME_BYTES,
  type NetBackend,
  NetDevice,
  RX_QUEUE_FRAMES,
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_F_HOST_TSO4,
  VIRTIO_NET_F_HOST_TSO6,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_HDR_BYTES,
} from "../../lib/virtio/net.ts";
import {
  VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
} from "../../lib/virtio/net_offload.ts";
import { bit } from "../../lib/virtio/virtio_device.ts";
import { TestMachine, VirtioDriver } from "./virtio_driver.ts";
import {
  buildFrame,
  partialChecksumFrame,
  payloadBytes,
  referenceIpv4Checksum,
  referenceTransportChecksum,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
} from "./packets.ts";

class FakeWire implements NetBackend {
  sent: Uint8Array[] = [];
  deliver: (f: Uint8Array) => void = () => {};
  send(frame: Uint8Array): void {
    this.sent.push(frame);
  }
  onFrame(cb: (f: Uint8Array) => void): void {
    this.deliver = cb;
  }
}

function frame(len: number, seed: number): Uint8Array {
  const f = new Uint8Array(len);
  for (let i = 0; i < len; i++) f[i] = (i * 13 + seed) & 0xFF;
  return f;
}

function nic(backend: NetBackend, mac: number[]) {
  const m = new TestMachine(8 << 20);
  const dev = new NetDevice(backend, { mac: new Uint8Array(mac) });
  const { slot } = m.plug(dev, 11);
  return { m, dev, drv: new VirtioDriver(m, slot) };
}

/** Reads the frame the device put in receive chain `addrs` (one buffer per chain here). */
function received(drv: VirtioDriver, addr: number, len: number) {
  const mem = drv.m.mem;
  return {
    numBuffers: mem.view.getUint16(addr + 10, true),
    hdrRest: [...mem.u8.subarray(addr, addr + 10)],
    frame: mem.u8.slice(addr + VIRTIO_NET_HDR_BYTES, addr + len),
  };
}

Deno.test("NetDevice reports its MAC and an up link", () => {
  const { drv } = nic(new FakeWire(), [2, 0, 0, 0, 0, 7]);
  const f = drv.deviceFeatures();
  const offered = [
    VIRTIO_NET_F_MAC,
    VIRTIO_NET_F_STATUS,
    VIRTIO_NET_F_MRG_RXBUF,
    VIRTIO_NET_F_CSUM,
    VIRTIO_NET_F_GUEST_CSUM,
    VIRTIO_NET_F_HOST_TSO4,
    VIRTIO_NET_F_HOST_TSO6,
  ];
  for (const b of offered) {
    assert((f & bit(b)) !== 0n);
  }
  assertEquals([0, 1, 2, 3, 4, 5].map((i) => drv.configRead(i, 1)), [2, 0, 0, 0, 0, 7]);
  assertEquals(drv.configRead(6, 2), 1);
});

Deno.test("NetDevice pair exchanges frames over loopback SocketNet", async () => {
  const a = SocketNet.open("listen:127.0.0.1:0");
  const b = SocketNet.open({ mode: "connect", hostname: "127.0.0.1", port: a.localPort }, { retryMs: 10 });
  try {
    await Promise.all([a.whenConnected(), b.whenConnected()]);
    const na = nic(a, [2, 0, 0, 0, 0, 0xA]);
    const nb = nic(b, [2, 0, 0, 0, 0, 0xB]);
    for (const n of [na, nb]) {
      n.drv.start(2);
      for (let i = 0; i < 4; i++) n.drv.submit(n.drv.queues[0], [{ writable: 2048 }]);
    }
    const rxB = nb.drv.queues[0];
    const addrsB = [0, 1, 2, 3].map((i) => nb.m.mem.view.getUint32(rxB.desc + 16 * i, true));
    const f1 = frame(60, 1);
    const f2 = frame(1514, 2);
    na.drv.submit(na.drv.queues[1], [{ data: new Uint8Array(VIRTIO_NET_HDR_BYTES) }, { data: f1 }]);
    const one = new Uint8Array(VIRTIO_NET_HDR_BYTES + f2.length);
    one.set(f2, VIRTIO_NET_HDR_BYTES);
    na.drv.submit(na.drv.queues[1], [{ data: one }]); // header and frame in one buffer
    const u1 = await nb.drv.waitUsed(rxB);
    const u2 = await nb.drv.waitUsed(rxB);
    const r1 = received(nb.drv, addrsB[u1.id], u1.len);
    const r2 = received(nb.drv, addrsB[u2.id], u2.len);
    assertEquals([r1.numBuffers, r1.frame, r1.hdrRest.every((x) => x === 0)], [1, f1, true]);
    assertEquals([r2.numBuffers, r2.frame], [1, f2]);
    // And back.
    const f3 = frame(100, 3);
    nb.drv.submit(nb.drv.queues[1], [{ data: new Uint8Array(VIRTIO_NET_HDR_BYTES) }, { data: f3 }]);
    const rxA = na.drv.queues[0];
    const u3 = await na.drv.waitUsed(rxA);
    const addrA = na.m.mem.view.getUint32(rxA.desc + 16 * u3.id, true);
    assertEquals(received(na.drv, addrA, u3.len).frame, f3);
    assertEquals(u3.len, VIRTIO_NET_HDR_BYTES + 100);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("NetDevice spreads a large frame over mergeable buffers and sets num_buffers", () => {
  const wire = new FakeWire();
  const { drv, m } = nic(wire, [2, 0, 0, 0, 0, 1]);
  drv.start(2);
  const rx = drv.queues[0];
  const chains = [0, 1, 2, 3].map(() => drv.submit(rx, [{ writable: 4096 }]));
  const big = frame(10000, 9);
  wire.deliver(big);
  const used = [drv.pollUsed(rx)!, drv.pollUsed(rx)!, drv.pollUsed(rx)!];
  assertEquals(drv.pollUsed(rx), null, "the fourth buffer is still free");
  assertEquals(used.map((u) => u.len), [4096, 4096, 10012 - 8192]);
  assertEquals(m.mem.view.getUint16(chains[0].addrs[0] + 10, true), 3);
  const got = new Uint8Array(10000);
  got.set(m.mem.u8.subarray(chains[0].addrs[0] + 12, chains[0].addrs[0] + 4096), 0);
  got.set(m.mem.u8.subarray(chains[1].addrs[0], chains[1].addrs[0] + 4096), 4084);
  got.set(m.mem.u8.subarray(chains[2].addrs[0], chains[2].addrs[0] + 1820), 8180);
  assertEquals(got, big);
});

Deno.test("NetDevice without mergeable buffers drops frames too big for one buffer and keeps the buffer", () => {
  const wire = new FakeWire();
  const { drv, dev } = nic(wire, [2, 0, 0, 0, 0, 1]);
  drv.start(2, drv.deviceFeatures() & ~bit(VIRTIO_NET_F_MRG_RXBUF));
  const rx = drv.queues[0];
  drv.submit(rx, [{ writable: 1526 }]);
  wire.deliver(frame(4000, 0));
  assertEquals(drv.pollUsed(rx), null);
  assertEquals(dev.droppedFrames, 1);
  wire.deliver(frame(1514, 0));
  assertEquals(drv.pollUsed(rx)!.len, 1526);
});

Deno.test("NetDevice queues frames until buffers arrive and drops when its queue is full", () => {
  const wire = new FakeWire();
  const { drv, dev, m } = nic(wire, [2, 0, 0, 0, 0, 1]);
  drv.start(2);
  for (let i = 0; i < RX_QUEUE_FRAMES + 5; i++) wire.deliver(frame(60, i));
  wire.deliver(new Uint8Array(MAX_FRAME_BYTES + 1));
  assertEquals(dev.droppedFrames, 6);
  const rx = drv.queues[0];
  const s = drv.submit(rx, [{ writable: 2048 }]);
  assertEquals(drv.pollUsed(rx)!.len, 72);
  assertEquals(m.mem.u8.slice(s.addrs[0] + 12, s.addrs[0] + 72), frame(60, 0), "oldest first");
  assert(m.irq.level(11));
});

Deno.test("NetDevice transmit drops chains shorter than the header without failing", async () => {
  const wire = new FakeWire();
  const { drv } = nic(wire, [2, 0, 0, 0, 0, 1]);
  drv.start(2);
  const tx = drv.queues[1];
  drv.submit(tx, [{ data: new Uint8Array(5) }]);
  drv.submit(tx, [{ data: new Uint8Array(VIRTIO_NET_HDR_BYTES) }, { data: frame(42, 1) }]);
  await drv.waitUsed(tx);
  await drv.waitUsed(tx);
  assertEquals(wire.sent, [frame(42, 1)]);
});

// ---- Offloads ----

/** A struct virtio_net_hdr as a driver writes it (§5.1.6, little-endian). */
function netHeader(
  h: {
    flags?: number;
    gsoType?: number;
    hdrLen?: number;
    gsoSize?: number;
    csumStart?: number;
    csumOffset?: number;
  },
): Uint8Array {
  const bytes = new Uint8Array(VIRTIO_NET_HDR_BYTES);
  const v = new DataView(bytes.buffer);
  v.setUint8(0, h.flags ?? 0);
  v.setUint8(1, h.gsoType ?? VIRTIO_NET_HDR_GSO_NONE);
  v.setUint16(2, h.hdrLen ?? 0, true);
  v.setUint16(4, h.gsoSize ?? 0, true);
  v.setUint16(6, h.csumStart ?? 0, true);
  v.setUint16(8, h.csumOffset ?? 0, true);
  return bytes;
}

const OFFLOADS = bit(VIRTIO_NET_F_CSUM) | bit(VIRTIO_NET_F_GUEST_CSUM) | bit(VIRTIO_NET_F_HOST_TSO4) |
  bit(VIRTIO_NET_F_HOST_TSO6);

Deno.test("NetDevice with CSUM and HOST_TSO4 cuts a GSO frame into checksummed segments for the backend", async () => {
  const wire = new FakeWire();
  const { drv, dev } = nic(wire, [2, 0, 0, 0, 0, 1]);
  drv.start(2, (drv.deviceFeatures() & ~OFFLOADS) | bit(VIRTIO_NET_F_CSUM) | bit(VIRTIO_NET_F_HOST_TSO4));
  const tx = drv.queues[1];
  const b = buildFrame({
    payload: payloadBytes(10_000, 4),
    sequence: 5000,
    tcpFlags: TCP_ACK | TCP_PSH | TCP_FIN,
  });
  const { start, offset } = partialChecksumFrame(b, false);
  const header = netHeader({
    flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
    gsoType: VIRTIO_NET_HDR_GSO_TCPV4,
    hdrLen: b.payloadStart,
    gsoSize: 1448,
    csumStart: start,
    csumOffset: offset,
  });
  // Headers and payload in separate buffers, as Linux's scatter-gather transmit puts them.
  drv.submit(tx, [{ data: header }, { data: b.frame.subarray(0, b.payloadStart) }, {
    data: b.frame.subarray(b.payloadStart),
  }]);
  await drv.waitUsed(tx);
  assertEquals(dev.droppedFrames, 0);
  assertEquals(wire.sent.length, 7);
  const payload = new Uint8Array(10_000);
  wire.sent.forEach((s, i) => {
    const segment = { ...b, frame: s };
    assertEquals(
      new DataView(s.buffer).getUint16(b.transportStart + 16),
      referenceTransportChecksum(segment, false),
    );
    assertEquals(new DataView(s.buffer).getUint16(b.ipStart + 10), referenceIpv4Checksum(segment));
    assertEquals(new DataView(s.buffer).getUint32(b.transportStart + 4), 5000 + 1448 * i);
    payload.set(s.subarray(b.payloadStart), 1448 * i);
  });
  assertEquals(wire.sent.map((s) => s[b.transportStart + 13] & TCP_FIN), [0, 0, 0, 0, 0, 0, TCP_FIN]);
  assertEquals(payload, b.frame.subarray(b.payloadStart));

  // TCPV6 was not negotiated: that frame is dropped, and the queue goes on.
  const v6 = buildFrame({ ipv6: true, payload: payloadBytes(3000) });
  drv.submit(tx, [{ data: netHeader({ gsoType: VIRTIO_NET_HDR_GSO_TCPV6, gsoSize: 1428 }) }, {
    data: v6.frame,
  }]);
  await drv.waitUsed(tx);
  assertEquals([dev.droppedFrames, wire.sent.length], [1, 7]);
});

Deno.test("NetDevice with CSUM completes a partial checksum before sending", async () => {
  const wire = new FakeWire();
  const { drv } = nic(wire, [2, 0, 0, 0, 0, 1]);
  drv.start(2, (drv.deviceFeatures() & ~OFFLOADS) | bit(VIRTIO_NET_F_CSUM));
  const b = buildFrame({ ipv6: true, payload: payloadBytes(1400, 6) });
  const complete = b.frame.slice();
  const { start, offset } = partialChecksumFrame(b, true);
  const header = netHeader({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: start, csumOffset: offset });
  drv.submit(drv.queues[1], [{ data: header }, { data: b.frame }]);
  await drv.waitUsed(drv.queues[1]);
  assertEquals(wire.sent, [complete]);
});

Deno.test("NetDevice drops frames asking for offloads the driver did not negotiate", async () => {
  const wire = new FakeWire();
  const { drv, dev } = nic(wire, [2, 0, 0, 0, 0, 1]);
  drv.start(2, drv.deviceFeatures() & ~OFFLOADS);
  const tx = drv.queues[1];
  const b = buildFrame({ payload: payloadBytes(3000) });
  const plain = b.frame.slice();
  const { start, offset } = partialChecksumFrame(b, false);
  const needsChecksum = { flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: start, csumOffset: offset };
  drv.submit(tx, [{ data: netHeader(needsChecksum) }, { data: b.frame }]);
  drv.submit(tx, [{ data: netHeader({ gsoType: VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 1448 }) }, {
    data: plain,
  }]);
  drv.submit(tx, [{ data: netHeader({}) }, { data: plain }]);
  for (let i = 0; i < 3; i++) await drv.waitUsed(tx);
  assertEquals(dev.droppedFrames, 2);
  assertEquals(wire.sent, [plain], "a frame without offloads still goes out");
});

Deno.test("NetDevice with GUEST_CSUM marks received frames with good checksums DATA_VALID", () => {
  for (const guestChecksum of [true, false]) {
    const wire = new FakeWire();
    const { drv, m } = nic(wire, [2, 0, 0, 0, 0, 1]);
    const features = drv.deviceFeatures() & ~OFFLOADS;
    drv.start(2, guestChecksum ? features | bit(VIRTIO_NET_F_GUEST_CSUM) : features);
    const rx = drv.queues[0];
    const good = buildFrame({ payload: payloadBytes(500) }).frame;
    const bad = good.slice();
    bad[bad.length - 1] ^= 0xFF;
    const flags = [good, bad, frame(60, 1)].map((f) => {
      const s = drv.submit(rx, [{ writable: 2048 }]);
      wire.deliver(f);
      assertEquals(drv.pollUsed(rx)!.len, VIRTIO_NET_HDR_BYTES + f.length);
      assertEquals(
        m.mem.u8.slice(s.addrs[0] + VIRTIO_NET_HDR_BYTES, s.addrs[0] + VIRTIO_NET_HDR_BYTES + f.length),
        f,
      );
      return m.mem.u8[s.addrs[0]];
    });
    assertEquals(flags, guestChecksum ? [VIRTIO_NET_HDR_F_DATA_VALID, 0, 0] : [0, 0, 0]);
  }
});
