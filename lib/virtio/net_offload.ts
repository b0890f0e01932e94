/**
 * The checksum and segmentation offloads of virtio-net (virtio 1.x §5.1.6.2, §5.1.6.4), done on
 * the host as pure functions over Ethernet frames, so the guest's interpreted TCP stack need not
 * checksum every byte or cut every segment itself. net.ts decides what the driver may ask for;
 * this file only does the work (the Internet checksum itself is lib/net/checksum.ts): completing a partial checksum
 * (Linux's CHECKSUM_PARTIAL), TCP segmentation of IPv4 and IPv6 frames (TSO), and checking a
 * received frame's checksums so the device can tell the guest they are right.
 *
 * Frames come from the guest and are untrusted: every offset and length in the virtio header and
 * in the Ethernet, IP and TCP headers is checked against the frame. Anything inconsistent makes a
 * function return false (the device drops the frame); none of them throws on bad input or touches
 * a byte outside the frame. Only Ethernet with at most one 802.1Q tag, IPv4 without fragments and
 * IPv6 without extension headers are understood; anything else is refused, never guessed at.
 */

import { internetChecksum, onesComplementSum } from "../net/checksum.ts";

// ---- Spec constants (§5.1.6) ----

/** flags: the driver left a partial checksum to complete (transmit). */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** flags: the device checked the frame's checksums (receive, with VIRTIO_NET_F_GUEST_CSUM). */
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;

export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_UDP = 3;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
/** gso_type bit: the frame carries ECN (valid only with VIRTIO_NET_F_HOST_ECN, which we do not offer). */
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

// ---- Frame layout ----

const ETHERNET_HEADER_BYTES = 14;
const ETHERNET_TYPE = 12;
const VLAN_TAG_BYTES = 4;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86DD;
const ETHERTYPE_VLAN = 0x8100;

// IPv4 header (RFC 791).
const IPV4_MIN_HEADER_BYTES = 20;
const IPV4_TOTAL_LENGTH = 2;
const IPV4_IDENTIFICATION = 4;
const IPV4_FRAGMENT = 6;
const IPV4_PROTOCOL = 9;
const IPV4_CHECKSUM = 10;
const IPV4_SOURCE = 12;
const IPV4_ADDRESSES_BYTES = 8;
/** The More Fragments flag and the fragment offset: either set means a fragment. */
const IPV4_FRAGMENT_MASK = 0x3FFF;

// IPv6 header (RFC 8200).
const IPV6_HEADER_BYTES = 40;
const IPV6_PAYLOAD_LENGTH = 4;
const IPV6_NEXT_HEADER = 6;
const IPV6_SOURCE = 8;
const IPV6_ADDRESSES_BYTES = 32;

const IP_PROTOCOL_TCP = 6;
const IP_PROTOCOL_UDP = 17;

// TCP header (RFC 9293).
const TCP_MIN_HEADER_BYTES = 20;
const TCP_SEQUENCE = 4;
const TCP_DATA_OFFSET = 12;
const TCP_FLAGS = 13;
const TCP_CHECKSUM = 16;
const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

// UDP header (RFC 768).
const UDP_HEADER_BYTES = 8;
const UDP_LENGTH = 4;
const UDP_CHECKSUM = 6;

/** What ones' complement arithmetic writes for a computed checksum of 0 (Linux's CSUM_MANGLED_0). */
const CHECKSUM_MANGLED_ZERO = 0xFFFF;

// ---- Checksum completion ----

/**
 * Completes a partial checksum in place (VIRTIO_NET_HDR_F_NEEDS_CSUM, §5.1.6.2), with Linux's
 * CHECKSUM_PARTIAL meaning: the driver has put the pseudo-header sum in the checksum field, so
 * summing from `checksumStart` (csum_start) to the end of the frame and storing the complement at
 * `checksumStart + checksumOffset` (csum_offset, big-endian) gives the full checksum. A result of 0
 * is stored as 0xFFFF, its other ones' complement form, because 0 means "no checksum" to UDP.
 * Returns false, changing nothing, when the field does not lie inside the frame.
 */
export function completePartialChecksum(
  frame: Uint8Array,
  checksumStart: number,
  checksumOffset: number,
): boolean {
  const field = checksumStart + checksumOffset;
  if (checksumStart < 0 || checksumOffset < 0 || field + 2 > frame.length) return false;
  const checksum = internetChecksum(frame, checksumStart, frame.length);
  setUint16(frame, field, checksum === 0 ? CHECKSUM_MANGLED_ZERO : checksum);
  return true;
}

// ---- Frame parsing ----

/** Where a frame's IP packet and its transport header lie, as parseIpPacket found them. */
interface IpPacket {
  /** Offset of the IP header. */
  ipStart: number;
  /** Offset of the TCP or UDP header, just past the IP header. */
  transportStart: number;
  /** End of the IP packet by its own length field; Ethernet padding may follow. */
  ipEnd: number;
  /** IP_PROTOCOL_TCP or IP_PROTOCOL_UDP. */
  protocol: number;
  isIpv6: boolean;
}

/**
 * Finds the IP packet in an Ethernet frame (14-byte header, or 18 with one 802.1Q tag): an IPv4
 * packet that is not a fragment, or an IPv6 packet without extension headers, carrying TCP or UDP,
 * whose header and stated length fit in the frame. Returns null for anything else.
 */
function parseIpPacket(frame: Uint8Array): IpPacket | null {
  let ipStart = ETHERNET_HEADER_BYTES;
  if (frame.length < ipStart) return null;
  let etherType = getUint16(frame, ETHERNET_TYPE);
  if (etherType === ETHERTYPE_VLAN) {
    ipStart += VLAN_TAG_BYTES;
    if (frame.length < ipStart) return null;
    etherType = getUint16(frame, ETHERNET_TYPE + VLAN_TAG_BYTES);
  }
  if (etherType === ETHERTYPE_IPV4) {
    if (frame.length < ipStart + IPV4_MIN_HEADER_BYTES || frame[ipStart] >>> 4 !== 4) return null;
    const headerBytes = (frame[ipStart] & 0x0F) * 4;
    const totalLength = getUint16(frame, ipStart + IPV4_TOTAL_LENGTH);
    const protocol = frame[ipStart + IPV4_PROTOCOL];
    if (
      headerBytes < IPV4_MIN_HEADER_BYTES || totalLength < headerBytes ||
      ipStart + totalLength > frame.length ||
      (getUint16(frame, ipStart + IPV4_FRAGMENT) & IPV4_FRAGMENT_MASK) !== 0 ||
      (protocol !== IP_PROTOCOL_TCP && protocol !== IP_PROTOCOL_UDP)
    ) {
      return null;
    }
    return {
      ipStart,
      transportStart: ipStart + headerBytes,
      ipEnd: ipStart + totalLength,
      protocol,
      isIpv6: false,
    };
  }
  if (etherType === ETHERTYPE_IPV6) {
    if (frame.length < ipStart + IPV6_HEADER_BYTES || frame[ipStart] >>> 4 !== 6) return null;
    const payloadLength = getUint16(frame, ipStart + IPV6_PAYLOAD_LENGTH);
    const protocol = frame[ipStart + IPV6_NEXT_HEADER];
    // A payload length of 0 is a jumbogram's (RFC 2675), whose length sits in an extension header.
    if (
      payloadLength === 0 || ipStart + IPV6_HEADER_BYTES + payloadLength > frame.length ||
      (protocol !== IP_PROTOCOL_TCP && protocol !== IP_PROTOCOL_UDP)
    ) {
      return null;
    }
    return {
      ipStart,
      transportStart: ipStart + IPV6_HEADER_BYTES,
      ipEnd: ipStart + IPV6_HEADER_BYTES + payloadLength,
      protocol,
      isIpv6: true,
    };
  }
  return null;
}

/**
 * The ones' complement sum of the pseudo-header that TCP and UDP checksums cover: for IPv4 the
 * addresses, a zero byte, the protocol and the transport length (RFC 9293 §3.1); for IPv6 the
 * addresses, the 32-bit transport length, three zero bytes and the next header (RFC 8200 §8.1).
 */
function pseudoHeaderSum(frame: Uint8Array, packet: IpPacket, transportLength: number): number {
  const { ipStart } = packet;
  const lengthSum = (transportLength >>> 16) + (transportLength & 0xFFFF);
  const partial = packet.protocol + lengthSum;
  return packet.isIpv6
    ? onesComplementSum(frame, ipStart + IPV6_SOURCE, ipStart + IPV6_SOURCE + IPV6_ADDRESSES_BYTES, partial)
    : onesComplementSum(frame, ipStart + IPV4_SOURCE, ipStart + IPV4_SOURCE + IPV4_ADDRESSES_BYTES, partial);
}

// ---- TCP segmentation ----

/**
 * The smallest gso_size accepted: Linux's TCP_MIN_MSS. A guest asking for less is refused, so one
 * 64 KiB descriptor cannot turn into tens of thousands of tiny frames on the link.
 */
export const MIN_SEGMENT_BYTES = 88;

/**
 * Cuts a TCP frame larger than the MSS into frames of at most `segmentSize` (gso_size) payload
 * bytes each (TSO, §5.1.6.2 with VIRTIO_NET_HDR_GSO_TCPV4 or TCPV6), the way Linux's
 * tcp_gso_segment does: every frame gets the headers (IP options and TCP options included), its own
 * IPv4 total length or IPv6 payload length, the next IPv4 identification (with its header checksum
 * recomputed), its sequence number, and a full TCP checksum; FIN and PSH stay on the last frame
 * only and CWR on the first only. Each frame goes to `emit` as a fresh Uint8Array the receiver
 * may keep. A payload that fits one segment still comes out as one frame, with checksums.
 *
 * `headerLength` (hdr_len) is only a hint (§5.1.6.2.2: the device must not rely on it): the
 * headers are parsed, and hdr_len is merely required to lie inside the frame. The IP length field
 * must match the frame, as it does from Linux. Returns false, having emitted nothing, for a frame
 * that is not what `gsoType` says, has an inconsistent header, a gso_size below MIN_SEGMENT_BYTES or the ECN
 * bit.
 */
export function segmentTcp(
  frame: Uint8Array,
  gsoType: number,
  segmentSize: number,
  headerLength: number,
  emit: (segment: Uint8Array) => void,
): boolean {
  if (gsoType !== VIRTIO_NET_HDR_GSO_TCPV4 && gsoType !== VIRTIO_NET_HDR_GSO_TCPV6) return false;
  if (segmentSize < MIN_SEGMENT_BYTES || headerLength > frame.length) return false;
  const packet = parseIpPacket(frame);
  if (
    packet === null || packet.protocol !== IP_PROTOCOL_TCP || packet.ipEnd !== frame.length ||
    packet.isIpv6 !== (gsoType === VIRTIO_NET_HDR_GSO_TCPV6)
  ) {
    return false;
  }
  const { ipStart, transportStart } = packet;
  if (transportStart + TCP_MIN_HEADER_BYTES > frame.length) return false;
  const tcpHeaderBytes = (frame[transportStart + TCP_DATA_OFFSET] >>> 4) * 4;
  const headersEnd = transportStart + tcpHeaderBytes;
  if (tcpHeaderBytes < TCP_MIN_HEADER_BYTES || headersEnd > frame.length) return false;

  const payloadLength = frame.length - headersEnd;
  const firstSequence = getUint32(frame, transportStart + TCP_SEQUENCE);
  const firstIdentification = packet.isIpv6 ? 0 : getUint16(frame, ipStart + IPV4_IDENTIFICATION);
  const flags = frame[transportStart + TCP_FLAGS];
  const headers = frame.subarray(0, headersEnd);
  let offset = 0;
  let index = 0;
  do {
    const chunk = Math.min(segmentSize, payloadLength - offset);
    const segment = new Uint8Array(headersEnd + chunk);
    segment.set(headers);
    segment.set(frame.subarray(headersEnd + offset, headersEnd + offset + chunk), headersEnd);
    if (packet.isIpv6) {
      setUint16(segment, ipStart + IPV6_PAYLOAD_LENGTH, segment.length - transportStart);
    } else {
      setUint16(segment, ipStart + IPV4_TOTAL_LENGTH, segment.length - ipStart);
      setUint16(segment, ipStart + IPV4_IDENTIFICATION, (firstIdentification + index) & 0xFFFF);
      setUint16(segment, ipStart + IPV4_CHECKSUM, 0);
      setUint16(segment, ipStart + IPV4_CHECKSUM, internetChecksum(segment, ipStart, transportStart));
    }
    setUint32(segment, transportStart + TCP_SEQUENCE, firstSequence + offset);
    let segmentFlags = flags;
    if (offset + chunk < payloadLength) segmentFlags &= ~(TCP_FIN | TCP_PSH);
    if (index > 0) segmentFlags &= ~TCP_CWR;
    segment[transportStart + TCP_FLAGS] = segmentFlags;
    const tcpLength = segment.length - transportStart;
    setUint16(segment, transportStart + TCP_CHECKSUM, 0);
    setUint16(
      segment,
      transportStart + TCP_CHECKSUM,
      internetChecksum(segment, transportStart, segment.length, pseudoHeaderSum(segment, packet, tcpLength)),
    );
    emit(segment);
    offset += chunk;
    index++;
  } while (offset < payloadLength);
  return true;
}

// ---- Receive checksum validation ----

/**
 * Whether a received frame is IPv4 or IPv6 carrying TCP or UDP, not fragmented, with every
 * checksum right: the IPv4 header checksum and the TCP or UDP checksum over the pseudo-header.
 * A UDP checksum of 0 over IPv4 means the sender computed none (RFC 768), which is accepted; over
 * IPv6 it is invalid (RFC 8200 §8.1). Only then may the device set VIRTIO_NET_HDR_F_DATA_VALID
 * (§5.1.6.4); on false the guest checks the frame itself, so false is always safe.
 */
export function validateChecksums(frame: Uint8Array): boolean {
  const packet = parseIpPacket(frame);
  if (packet === null) return false;
  const { ipStart, transportStart, ipEnd } = packet;
  if (!packet.isIpv6 && onesComplementSum(frame, ipStart, transportStart) !== 0xFFFF) return false;
  const transportLength = ipEnd - transportStart;
  if (packet.protocol === IP_PROTOCOL_TCP) {
    if (transportLength < TCP_MIN_HEADER_BYTES) return false;
  } else {
    if (
      transportLength < UDP_HEADER_BYTES || getUint16(frame, transportStart + UDP_LENGTH) !== transportLength
    ) {
      return false;
    }
    if (getUint16(frame, transportStart + UDP_CHECKSUM) === 0) return !packet.isIpv6;
  }
  const sum = onesComplementSum(
    frame,
    transportStart,
    ipEnd,
    pseudoHeaderSum(frame, packet, transportLength),
  );
  return sum === 0xFFFF;
}

// ---- Big-endian fields ----

function getUint16(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1];
}

function setUint16(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 8;
  bytes[at + 1] = value;
}

function getUint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

/** Stores `value` modulo 2^32. */
function setUint32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = value >>> 16;
  bytes[at + 2] = value >>> 8;
  bytes[at + 3] = value;
}
