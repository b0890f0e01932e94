/**
 * Ethernet frames for the virtio-net tests, built field by field: TCP or UDP over IPv4 or IPv6,
 * optionally behind an 802.1Q tag, with IP and TCP options. Their checksums come from a plain
 * reference implementation written here (RFC 1071's add with end-around carry, one word at a time,
 * over an explicitly built pseudo-header), independent of lib/virtio/net_offload.ts, so the device's
 * sums are checked against a second opinion.
 */

export const IP_PROTOCOL_TCP = 6;
export const IP_PROTOCOL_UDP = 17;
export const TCP_FIN = 0x01;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_CWR = 0x80;

export interface FrameOptions {
  ipv6?: boolean;
  /** Put one 802.1Q tag (VLAN 5) before the EtherType. */
  vlan?: boolean;
  /** IP_PROTOCOL_TCP (default) or IP_PROTOCOL_UDP. */
  protocol?: number;
  payload: Uint8Array;
  /** TCP sequence number. */
  sequence?: number;
  /** IPv4 identification. */
  identification?: number;
  /** TCP flags byte; ACK by default. */
  tcpFlags?: number;
  /** Bytes of IPv4 options (NOPs), a multiple of 4. */
  ipOptionBytes?: number;
  /** Bytes of TCP options (NOPs), a multiple of 4. */
  tcpOptionBytes?: number;
}

/** A built frame and where its parts start. */
export interface BuiltFrame {
  frame: Uint8Array;
  ipStart: number;
  transportStart: number;
  payloadStart: number;
}

/** The Internet checksum of `bytes` the slow, obvious way: RFC 1071 §1 step by step. */
export function referenceChecksum(bytes: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += bytes[i] * 256 + (i + 1 < bytes.length ? bytes[i + 1] : 0);
    if (sum > 0xFFFF) sum -= 0xFFFF; // the end-around carry
  }
  return 0xFFFF - sum;
}

/** The TCP or UDP pseudo-header of a built frame, as bytes (RFC 9293 §3.1, RFC 8200 §8.1). */
export function pseudoHeader(b: BuiltFrame, ipv6: boolean, transportLength: number): number[] {
  const f = b.frame;
  if (ipv6) {
    const next = f[b.ipStart + 6];
    return [
      ...f.subarray(b.ipStart + 8, b.ipStart + 40),
      ...[24, 16, 8, 0].map((s) => (transportLength >>> s) & 0xFF),
      0,
      0,
      0,
      next,
    ];
  }
  return [
    ...f.subarray(b.ipStart + 12, b.ipStart + 20),
    0,
    f[b.ipStart + 9],
    transportLength >>> 8,
    transportLength & 0xFF,
  ];
}

/** The reference TCP or UDP checksum of a built frame, reading its checksum field as zero. */
export function referenceTransportChecksum(b: BuiltFrame, ipv6: boolean): number {
  const f = b.frame;
  const transport = [...f.subarray(b.transportStart)];
  const field = f[b.ipStart + (ipv6 ? 6 : 9)] === IP_PROTOCOL_UDP ? 6 : 16;
  transport[field] = transport[field + 1] = 0;
  return referenceChecksum([...pseudoHeader(b, ipv6, transport.length), ...transport]);
}

/** The reference IPv4 header checksum of a built frame, reading its checksum field as zero. */
export function referenceIpv4Checksum(b: BuiltFrame): number {
  const header = [...b.frame.subarray(b.ipStart, b.transportStart)];
  header[10] = header[11] = 0;
  return referenceChecksum(header);
}

/** Builds a frame with every checksum filled in by the reference implementation. */
export function buildFrame(o: FrameOptions): BuiltFrame {
  const ipv6 = o.ipv6 ?? false;
  const protocol = o.protocol ?? IP_PROTOCOL_TCP;
  const ipStart = o.vlan ? 18 : 14;
  const ipHeaderBytes = ipv6 ? 40 : 20 + (o.ipOptionBytes ?? 0);
  const transportStart = ipStart + ipHeaderBytes;
  const transportHeaderBytes = protocol === IP_PROTOCOL_UDP ? 8 : 20 + (o.tcpOptionBytes ?? 0);
  const payloadStart = transportStart + transportHeaderBytes;
  const f = new Uint8Array(payloadStart + o.payload.length);
  const v = new DataView(f.buffer);
  f.set([0x02, 0, 0, 0, 0, 0x0B, 0x02, 0, 0, 0, 0, 0x0A]); // destination, source MAC
  if (o.vlan) v.setUint32(12, 0x8100_0005);
  v.setUint16(ipStart - 2, ipv6 ? 0x86DD : 0x0800);
  if (ipv6) {
    v.setUint32(ipStart, 0x6000_0000);
    v.setUint16(ipStart + 4, f.length - transportStart);
    f[ipStart + 6] = protocol;
    f[ipStart + 7] = 64;
    f.set([0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], ipStart + 8);
    f.set([0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], ipStart + 24);
  } else {
    f[ipStart] = 0x40 | (ipHeaderBytes / 4);
    v.setUint16(ipStart + 2, f.length - ipStart);
    v.setUint16(ipStart + 4, o.identification ?? 0x1234);
    v.setUint16(ipStart + 6, 0x4000); // don't fragment
    f[ipStart + 8] = 64;
    f[ipStart + 9] = protocol;
    f.set([10, 0, 0, 1, 10, 0, 0, 2], ipStart + 12);
    f.fill(1, ipStart + 20, transportStart); // NOP options
  }
  v.setUint16(transportStart, 40000);
  v.setUint16(transportStart + 2, 5000);
  if (protocol === IP_PROTOCOL_UDP) {
    v.setUint16(transportStart + 4, f.length - transportStart);
  } else {
    v.setUint32(transportStart + 4, o.sequence ?? 1000);
    v.setUint32(transportStart + 8, 77);
    f[transportStart + 12] = (transportHeaderBytes / 4) << 4;
    f[transportStart + 13] = o.tcpFlags ?? TCP_ACK;
    v.setUint16(transportStart + 14, 64240);
    f.fill(1, transportStart + 20, payloadStart);
  }
  f.set(o.payload, payloadStart);
  const built = { frame: f, ipStart, transportStart, payloadStart };
  if (!ipv6) v.setUint16(ipStart + 10, referenceIpv4Checksum(built));
  v.setUint16(
    transportStart + (protocol === IP_PROTOCOL_UDP ? 6 : 16),
    referenceTransportChecksum(built, ipv6),
  );
  return built;
}

/**
 * The frame as Linux hands it over with CHECKSUM_PARTIAL: the transport checksum field holds the
 * pseudo-header's sum, not complemented. Returns csum_start and csum_offset for the header.
 */
export function partialChecksumFrame(b: BuiltFrame, ipv6: boolean): { start: number; offset: number } {
  const offset = b.frame[b.ipStart + (ipv6 ? 6 : 9)] === IP_PROTOCOL_UDP ? 6 : 16;
  const sum = 0xFFFF - referenceChecksum(pseudoHeader(b, ipv6, b.frame.length - b.transportStart));
  new DataView(b.frame.buffer).setUint16(b.transportStart + offset, sum);
  return { start: b.transportStart, offset };
}

/** Deterministic filler bytes. */
export function payloadBytes(length: number, seed = 0): Uint8Array {
  const p = new Uint8Array(length);
  for (let i = 0; i < length; i++) p[i] = (i * 31 + seed + (i >>> 8)) & 0xFF;
  return p;
}
