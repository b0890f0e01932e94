/**
 * Tests for the virtio-net offloads on their own (virtio 1.x §5.1.6.2, §5.1.6.4): the Internet
 * checksum against RFC 1071's worked example and a well-known IPv4 header, completing partial
 * checksums as Linux leaves them, TCP segmentation over IPv4 and IPv6 checked field by field and
 * against the reference checksums of packets.ts, receive validation, and every malformation a guest
 * can write being refused without an exception.
 */
import { assert, assertEquals } from "../assert.ts";
import {
  completePartialChecksum,
  segmentTcp,
  validateChecksums,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP,
} from "../../lib/virtio/net_offload.ts";
import { internetChecksum, onesComplementSum } from "../../lib/net/checksum.ts";
import {
  buildFrame,
  type BuiltFrame,
  type FrameOptions,
  IP_PROTOCOL_UDP,
  partialChecksumFrame,
  payloadBytes,
  referenceChecksum,
  referenceIpv4Checksum,
  referenceTransportChecksum,
  TCP_ACK,
  TCP_CWR,
  TCP_FIN,
  TCP_PSH,
} from "./packets.ts";

/** Runs segmentTcp and collects what it emits. */
function segment(frame: Uint8Array, gsoType: number, gsoSize: number, hdrLen = 0) {
  const segments: Uint8Array[] = [];
  const ok = segmentTcp(frame, gsoType, gsoSize, hdrLen, (s) => segments.push(s));
  return { ok, segments };
}

function u16(f: Uint8Array, at: number): number {
  return (f[at] << 8) | f[at + 1];
}

function u32(f: Uint8Array, at: number): number {
  return new DataView(f.buffer, f.byteOffset).getUint32(at);
}

/** Recomputes a built IPv4 frame's header checksum after a test changed a header field. */
function fixIpv4Checksum(b: BuiltFrame): void {
  new DataView(b.frame.buffer).setUint16(b.ipStart + 10, referenceIpv4Checksum(b));
}

/** A small deterministic generator (xorshift32) for the corruption tests. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

// ---- The Internet checksum ----

Deno.test("onesComplementSum and internetChecksum match RFC 1071's example and a known IPv4 header", () => {
  // RFC 1071 §3: 0001 + f203 + f4f5 + f6f7 = 2ddf0, folded to ddf2; the checksum is its complement.
  const example = new Uint8Array([0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]);
  assertEquals(onesComplementSum(example, 0, 8), 0xDDF2);
  assertEquals(internetChecksum(example, 0, 8), 0x220D);
  // The same sum from a partial sum of the first half and a sub-range of the second.
  assertEquals(onesComplementSum(example, 4, 8, onesComplementSum(example, 0, 4)), 0xDDF2);

  // A real IPv4 header (192.168.0.1 to 192.168.0.199, UDP) whose checksum is known to be b861.
  const ipv4 = new Uint8Array([
    0x45,
    0x00,
    0x00,
    0x73,
    0x00,
    0x00,
    0x40,
    0x00,
    0x40,
    0x11,
    0xB8,
    0x61,
    0xC0,
    0xA8,
    0x00,
    0x01,
    0xC0,
    0xA8,
    0x00,
    0xC7,
  ]);
  assertEquals(onesComplementSum(ipv4, 0, 20), 0xFFFF, "a correct header sums to all ones");
  const zeroed = ipv4.slice();
  zeroed[10] = zeroed[11] = 0;
  assertEquals(internetChecksum(zeroed, 0, 20), 0xB861);
  assertEquals(referenceChecksum(zeroed), 0xB861, "the test's reference agrees");

  // An odd length pads the last byte with a zero.
  assertEquals(onesComplementSum(new Uint8Array([1, 2, 3]), 0, 3), 0x0402);
});

Deno.test("internetChecksum agrees with the reference over many lengths, offsets and carries", () => {
  const next = random(7);
  const data = new Uint8Array(70_000).map(() => next() < 0.5 ? 0xFF : (next() * 256) | 0);
  for (let trial = 0; trial < 200; trial++) {
    const start = (next() * 2000) | 0;
    const end = start + ((next() * (trial < 10 ? 68_000 : 3000)) | 0);
    const initial = (next() * 0x10000) | 0;
    const got = internetChecksum(data, start, end, initial);
    const want = referenceChecksum([initial >>> 8, initial & 0xFF, ...data.subarray(start, end)]);
    assertEquals(got, want, `bytes ${start}-${end}, initial ${initial}`);
  }
});

// ---- Checksum completion ----

Deno.test("completePartialChecksum finishes TCP and UDP checksums left as Linux leaves them", () => {
  const cases = [
    { ipv6: false, protocol: undefined },
    { ipv6: false, protocol: IP_PROTOCOL_UDP },
    { ipv6: true, protocol: undefined },
    { ipv6: true, protocol: IP_PROTOCOL_UDP, vlan: true },
  ];
  for (const c of cases) {
    const b = buildFrame({ ...c, payload: payloadBytes(1001, 3) });
    const complete = b.frame.slice();
    const { start, offset } = partialChecksumFrame(b, c.ipv6);
    assert(
      u16(b.frame, start + offset) !== u16(complete, start + offset),
      "the field holds the pseudo-header sum",
    );
    assert(completePartialChecksum(b.frame, start, offset));
    assertEquals(b.frame, complete, JSON.stringify(c));
    assert(validateChecksums(b.frame));
  }
});

Deno.test("completePartialChecksum stores a checksum of 0 as 0xFFFF", () => {
  // Make the last payload word the checksum of the frame without it: the full sum is then all ones.
  const payload = payloadBytes(200, 1);
  payload[198] = payload[199] = 0;
  const first = buildFrame({ protocol: IP_PROTOCOL_UDP, payload });
  const checksum = u16(first.frame, first.transportStart + 6);
  payload[198] = checksum >>> 8;
  payload[199] = checksum & 0xFF;
  const b = buildFrame({ protocol: IP_PROTOCOL_UDP, payload });
  assertEquals(referenceTransportChecksum(b, false), 0, "the computed checksum is 0");
  const { start, offset } = partialChecksumFrame(b, false);
  assert(completePartialChecksum(b.frame, start, offset));
  assertEquals(u16(b.frame, start + offset), 0xFFFF);
  assert(validateChecksums(b.frame));
});

Deno.test("completePartialChecksum refuses a checksum field outside the frame and changes nothing", () => {
  const b = buildFrame({ payload: payloadBytes(100) });
  const before = b.frame.slice();
  const n = b.frame.length;
  // Past the end, the last byte alone, a field straddling the end, and offsets at their le16 maxima.
  const straddling = [b.transportStart, n - b.transportStart - 1];
  const outside = [[n, 0], [n + 10, 16], [n - 1, 0], straddling, [0, 0xFFFF], [0xFFFF, 0xFFFF]];
  for (const [start, offset] of outside) {
    assertEquals(completePartialChecksum(b.frame, start, offset), false, `${start}+${offset}`);
  }
  assertEquals(b.frame, before);
  assert(completePartialChecksum(b.frame, n - 2, 0), "the last two bytes are still inside");
});

// ---- TCP segmentation ----

/** Checks the segments of a TCP frame against the original, field by field. */
function checkSegments(original: BuiltFrame, segments: Uint8Array[], gsoSize: number, ipv6: boolean): void {
  const { ipStart, transportStart, payloadStart } = original;
  const o = original.frame;
  const payload = o.subarray(payloadStart);
  assertEquals(segments.length, Math.max(1, Math.ceil(payload.length / gsoSize)));
  const flags = o[transportStart + 13];
  // Every header byte but these stays as it was.
  const changing = ipv6 ? [ipStart + 4, ipStart + 5] : [2, 3, 4, 5, 10, 11].map((x) => ipStart + x);
  changing.push(...[4, 5, 6, 7, 13, 16, 17].map((x) => transportStart + x));
  const fixedHeaders = (f: Uint8Array) => {
    const headers = f.slice(0, payloadStart);
    for (const at of changing) headers[at] = 0;
    return headers;
  };
  let offset = 0;
  segments.forEach((s, i) => {
    const b = { frame: s, ipStart, transportStart, payloadStart };
    const chunk = Math.min(gsoSize, payload.length - offset);
    const last = i === segments.length - 1;
    assertEquals(s.length, payloadStart + chunk);
    assertEquals(fixedHeaders(s), fixedHeaders(o), "the headers that do not change");
    if (ipv6) {
      assertEquals(u16(s, ipStart + 4), s.length - transportStart, "IPv6 payload length");
    } else {
      assertEquals(u16(s, ipStart + 2), s.length - ipStart, "IPv4 total length");
      assertEquals(u16(s, ipStart + 4), (u16(o, ipStart + 4) + i) & 0xFFFF, "IPv4 identification");
      assertEquals(u16(s, ipStart + 10), referenceIpv4Checksum(b), "IPv4 header checksum");
    }
    assertEquals(u32(s, transportStart + 4), (u32(o, transportStart + 4) + offset) >>> 0, "sequence");
    let want = flags;
    if (!last) want &= ~(TCP_FIN | TCP_PSH);
    if (i > 0) want &= ~TCP_CWR;
    assertEquals(s[transportStart + 13], want, `flags of segment ${i}`);
    assertEquals(u16(s, transportStart + 16), referenceTransportChecksum(b, ipv6), "TCP checksum");
    assert(validateChecksums(s), `segment ${i} validates`);
    offset += chunk;
  });
  const joined = new Uint8Array(offset);
  let at = 0;
  for (const s of segments) {
    joined.set(s.subarray(payloadStart), at);
    at += s.length - payloadStart;
  }
  assertEquals(joined, payload, "the payloads put together are the original");
}

Deno.test("segmentTcp cuts 10,000 bytes over IPv4 into 7 checksummed segments of 1448", () => {
  const b = buildFrame({
    payload: payloadBytes(10_000, 5),
    sequence: 0xFFFF_F000, // wraps past 2^32 in the third segment
    identification: 0xFFFD, // wraps past 65535 in the fourth
    tcpFlags: TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR,
    ipOptionBytes: 4,
    tcpOptionBytes: 12,
  });
  partialChecksumFrame(b, false); // as Linux sends it; the segments' checksums do not depend on it
  const { ok, segments } = segment(b.frame, VIRTIO_NET_HDR_GSO_TCPV4, 1448, b.payloadStart);
  assert(ok);
  assertEquals(segments.map((s) => s.length - b.payloadStart), [1448, 1448, 1448, 1448, 1448, 1448, 1312]);
  assertEquals(segments.map((s) => s[b.transportStart + 13]), [
    TCP_ACK | TCP_CWR,
    TCP_ACK,
    TCP_ACK,
    TCP_ACK,
    TCP_ACK,
    TCP_ACK,
    TCP_ACK | TCP_PSH | TCP_FIN,
  ]);
  assertEquals(segments.map((s) => u16(s, b.ipStart + 4)), [0xFFFD, 0xFFFE, 0xFFFF, 0, 1, 2, 3]);
  checkSegments(b, segments, 1448, false);
});

Deno.test("segmentTcp cuts an IPv6 frame behind a VLAN tag", () => {
  const b = buildFrame({
    ipv6: true,
    vlan: true,
    payload: payloadBytes(5000, 9),
    tcpFlags: TCP_ACK | TCP_PSH,
    tcpOptionBytes: 12,
  });
  partialChecksumFrame(b, true);
  const { ok, segments } = segment(b.frame, VIRTIO_NET_HDR_GSO_TCPV6, 1428, 0);
  assert(ok);
  assertEquals(segments.length, 4);
  checkSegments(b, segments, 1428, true);
});

Deno.test("segmentTcp sends a payload that fits one segment, or none at all, as one checksummed frame", () => {
  for (const length of [1448, 100, 0]) {
    const b = buildFrame({ payload: payloadBytes(length), tcpFlags: TCP_ACK | TCP_FIN | TCP_CWR });
    const expected = b.frame.slice();
    partialChecksumFrame(b, false);
    const { ok, segments } = segment(b.frame, VIRTIO_NET_HDR_GSO_TCPV4, 1448);
    assert(ok);
    assertEquals(segments, [expected]);
  }
});

Deno.test("segmentTcp refuses inconsistent frames and headers, emitting nothing and throwing nothing", () => {
  const tcp4 = () => buildFrame({ payload: payloadBytes(3000), ipOptionBytes: 4 });
  const tcp6 = () => buildFrame({ ipv6: true, payload: payloadBytes(3000) });
  const udp4 = () => buildFrame({ protocol: IP_PROTOCOL_UDP, payload: payloadBytes(3000) });
  const udp6 = () => buildFrame({ ipv6: true, protocol: IP_PROTOCOL_UDP, payload: payloadBytes(3000) });
  const refusals: [string, BuiltFrame, number, number, number?][] = [
    ["gso_size 0", tcp4(), VIRTIO_NET_HDR_GSO_TCPV4, 0],
    ["gso_size 87, below Linux's TCP_MIN_MSS", tcp4(), VIRTIO_NET_HDR_GSO_TCPV4, 87],
    ["the ECN bit", tcp4(), VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, 1448],
    ["GSO type UDP", tcp4(), VIRTIO_NET_HDR_GSO_UDP, 1448],
    ["GSO type none", tcp4(), VIRTIO_NET_HDR_GSO_NONE, 1448],
    ["IPv4 frame, TCPV6 type", tcp4(), VIRTIO_NET_HDR_GSO_TCPV6, 1448],
    ["IPv6 frame, TCPV4 type", tcp6(), VIRTIO_NET_HDR_GSO_TCPV4, 1448],
    ["UDP over IPv4", udp4(), VIRTIO_NET_HDR_GSO_TCPV4, 1448],
    ["UDP over IPv6", udp6(), VIRTIO_NET_HDR_GSO_TCPV6, 1448],
    ["hdr_len past the end", tcp4(), VIRTIO_NET_HDR_GSO_TCPV4, 1448, 3100],
  ];
  const edit = (name: string, b: BuiltFrame, change: (f: Uint8Array, b: BuiltFrame) => void, type = 1) => {
    change(b.frame, b);
    refusals.push([name, b, type, 1448]);
  };
  // With IHL 4, what would be read as the TCP data offset is made plausible: only IHL stops it.
  edit("IHL 4", buildFrame({ payload: payloadBytes(3000) }), (f, b) => {
    f[b.ipStart] = 0x44;
    f[b.transportStart + 8] = 0x50;
  });
  edit("IHL 0", tcp4(), (f, b) => (f[b.ipStart] = 0x40));
  edit("IHL past the IP packet", buildFrame({ payload: new Uint8Array(0), ipOptionBytes: 4 }), (f, b) => {
    f[b.ipStart] = 0x4F; // 60 bytes of a 44-byte packet
  });
  edit("IP version 6 in an IPv4 EtherType", tcp4(), (f, b) => (f[b.ipStart] = 0x66));
  edit("IPv4 total length short of the frame", tcp4(), (f, b) => (f[b.ipStart + 2] -= 1));
  edit("IPv4 total length past the frame", tcp4(), (f, b) => (f[b.ipStart + 2] += 1));
  edit("IPv4 fragment", tcp4(), (f, b) => (f[b.ipStart + 6] |= 0x20));
  edit("IPv6 payload length past the frame", tcp6(), (f, b) => (f[b.ipStart + 4] += 1), 4);
  edit("IPv6 payload length 0", tcp6(), (f, b) => (f[b.ipStart + 4] = f[b.ipStart + 5] = 0), 4);
  edit("IPv6 hop-by-hop header", tcp6(), (f, b) => (f[b.ipStart + 6] = 0), 4);
  edit("ICMP", tcp4(), (f, b) => (f[b.ipStart + 9] = 1));
  edit("ARP", tcp4(), (f) => (f[13] = 0x06));
  const tagged = buildFrame({ vlan: true, payload: payloadBytes(100) });
  edit("two VLAN tags", tagged, (f) => f.set([0x81, 0, 0, 5], 16));
  edit("TCP data offset 4", tcp4(), (f, b) => (f[b.transportStart + 12] = 0x40));
  const short = buildFrame({ payload: payloadBytes(10) });
  edit("TCP data offset past the frame", short, (f, b) => (f[b.transportStart + 12] = 0xF0));
  // A frame that ends inside each of its headers (the IP length is fixed up to match).
  for (const end of [0, 10, 14, 20, 33, 34, 40, 53]) {
    const b = buildFrame({ payload: new Uint8Array(0) });
    const f = b.frame.slice(0, end);
    if (end >= 18) f[17] = end - 14;
    refusals.push([`a frame of ${end} bytes`, { ...b, frame: f }, 1, 1448]);
  }
  for (const [name, b, type, size, hdrLen] of refusals) {
    const before = b.frame.slice();
    const { ok, segments } = segment(b.frame, type, size, hdrLen ?? 0);
    assertEquals([ok, segments.length], [false, 0], name);
    assertEquals(b.frame, before, `${name}: the frame is unchanged`);
  }
});

Deno.test("the offload functions survive truncated and corrupted frames without throwing", () => {
  const next = random(99);
  const bases = [
    buildFrame({ payload: payloadBytes(300), ipOptionBytes: 8, tcpOptionBytes: 8 }),
    buildFrame({ ipv6: true, vlan: true, payload: payloadBytes(300) }),
    buildFrame({ protocol: IP_PROTOCOL_UDP, payload: payloadBytes(300) }),
  ];
  let accepted = 0;
  for (let trial = 0; trial < 3000; trial++) {
    const base = bases[trial % bases.length];
    const f = base.frame.slice(0, trial < 300 ? (next() * base.frame.length) | 0 : base.frame.length);
    // Corrupt a few header bytes, where the parsing decisions are.
    for (let k = 0; k < 1 + ((next() * 3) | 0); k++) f[(next() * base.payloadStart) | 0] = (next() * 256) | 0;
    const size = (next() * 2000) | 0;
    const type = [1, 4, 0x81, 3][(next() * 4) | 0];
    const { ok, segments } = segment(f, type, size, (next() * 400) | 0);
    if (ok) accepted++;
    for (const s of segments) assert(s.length <= f.length);
    validateChecksums(f);
    completePartialChecksum(f, (next() * 400) | 0, (next() * 40) | 0);
  }
  assert(accepted > 0, "some corruptions leave a frame that can still be segmented");
});

// ---- Receive validation ----

Deno.test("validateChecksums accepts correct TCP and UDP over IPv4 and IPv6, padding included", () => {
  for (const ipv6 of [false, true]) {
    for (const protocol of [undefined, IP_PROTOCOL_UDP]) {
      for (const vlan of [false, true]) {
        const b = buildFrame({ ipv6, protocol, vlan, payload: payloadBytes(777, 2) });
        assert(validateChecksums(b.frame), JSON.stringify({ ipv6, protocol, vlan }));
      }
    }
  }
  const tiny = buildFrame({ payload: payloadBytes(2) });
  const padded = new Uint8Array(60);
  padded.set(tiny.frame);
  assert(validateChecksums(padded), "Ethernet padding after the IP packet is not summed");
  const noChecksum = buildFrame({ protocol: IP_PROTOCOL_UDP, payload: payloadBytes(50) });
  noChecksum.frame[noChecksum.transportStart + 6] = noChecksum.frame[noChecksum.transportStart + 7] = 0;
  assert(validateChecksums(noChecksum.frame), "UDP over IPv4 without a checksum has nothing to check");
});

Deno.test("validateChecksums rejects wrong checksums and frames it does not understand", () => {
  const tcp4 = { payload: payloadBytes(100) };
  const tcp6 = { ...tcp4, ipv6: true };
  const udp4 = { ...tcp4, protocol: IP_PROTOCOL_UDP };
  const udp6 = { ...udp4, ipv6: true };
  /** Changes an IPv4 header field and keeps the header checksum right, so only the change counts. */
  const inHeader = (change: (f: Uint8Array, b: BuiltFrame) => void) => (f: Uint8Array, b: BuiltFrame) => {
    change(f, b);
    fixIpv4Checksum(b);
  };
  const cases: [string, FrameOptions, (f: Uint8Array, b: BuiltFrame) => void][] = [
    ["a payload byte changed", tcp4, (f) => (f[f.length - 1] ^= 1)],
    ["an IPv6 payload byte changed", tcp6, (f) => (f[80] ^= 0x40)],
    ["the TCP checksum off by one", tcp4, (f, b) => (f[b.transportStart + 17] ^= 1)],
    ["the UDP checksum off by one", udp6, (f, b) => (f[b.transportStart + 7] ^= 1)],
    ["the IPv4 header checksum wrong", tcp4, (f, b) => (f[b.ipStart + 11] ^= 1)],
    ["an IPv4 address changed", tcp4, inHeader((f, b) => (f[b.ipStart + 15] ^= 1))],
    ["an IPv6 address changed", tcp6, (f, b) => (f[b.ipStart + 39] ^= 1)],
    ["a fragment (MF)", tcp4, inHeader((f, b) => (f[b.ipStart + 6] |= 0x20))],
    ["a fragment (offset)", tcp4, inHeader((f, b) => (f[b.ipStart + 7] = 1))],
    ["ICMP", tcp4, inHeader((f, b) => (f[b.ipStart + 9] = 1))],
    ["ARP", tcp4, (f) => (f[13] = 0x06)],
    ["an IPv6 extension header", tcp6, (f, b) => (f[b.ipStart + 6] = 0)],
    [
      "UDP over IPv6 without a checksum",
      udp6,
      (f, b) => (f[b.transportStart + 6] = f[b.transportStart + 7] = 0),
    ],
    ["a UDP length short of the IP payload", udp4, (f, b) => (f[b.transportStart + 5] -= 1)],
    ["an IPv4 total length past the frame", tcp4, inHeader((f, b) => (f[b.ipStart + 3] += 1))],
    [
      "a TCP header cut short",
      { payload: new Uint8Array(0) },
      inHeader((f, b) => (f[b.ipStart + 3] = 20 + 19)),
    ],
  ];
  for (const [name, options, change] of cases) {
    const b = buildFrame(options);
    assert(validateChecksums(b.frame), `${name}: valid before the change`);
    change(b.frame, b);
    assertEquals(validateChecksums(b.frame), false, name);
  }
});
