/**
 * UDP (RFC 768) over IPv4 for the user-mode network: checking a guest's datagram (length inside
 * the IP packet, checksum when present) and building ours with a full checksum.
 */
import { internetChecksum, ipv4PseudoHeaderSum, onesComplementSum } from "./checksum.ts";
import { ETH_HEADER_BYTES, ETHERTYPE_IPV4, writeEthernetHeader } from "./ethernet.ts";
import { IPPROTO_UDP, IPV4_HEADER_BYTES, type Ipv4Packet, writeIpv4Header } from "./ipv4.ts";

export const UDP_HEADER_BYTES = 8;

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  /** The payload, a view into the guest's frame (copy it to keep it). */
  payload: Uint8Array;
}

export function parseUdp(frame: Uint8Array, packet: Ipv4Packet): UdpDatagram | "truncated" | "bad checksum" {
  const at = packet.payloadStart;
  const available = packet.end - at;
  if (available < UDP_HEADER_BYTES) return "truncated";
  const length = (frame[at + 4] << 8) | frame[at + 5];
  if (length < UDP_HEADER_BYTES || length > available) return "truncated";
  const checksum = (frame[at + 6] << 8) | frame[at + 7];
  if (checksum !== 0) {
    const pseudo = ipv4PseudoHeaderSum(frame, packet.start, IPPROTO_UDP, length);
    if (onesComplementSum(frame, at, at + length, pseudo) !== 0xFFFF) return "bad checksum";
  }
  return {
    srcPort: (frame[at] << 8) | frame[at + 1],
    dstPort: (frame[at + 2] << 8) | frame[at + 3],
    payload: frame.subarray(at + UDP_HEADER_BYTES, at + length),
  };
}

/** A whole Ethernet frame carrying one UDP datagram. */
export function buildUdpFrame(
  macs: { dst: Uint8Array; src: Uint8Array },
  src: number,
  srcPort: number,
  dst: number,
  dstPort: number,
  payload: Uint8Array,
  ipId: number,
): Uint8Array {
  const udpBytes = UDP_HEADER_BYTES + payload.length;
  const frame = new Uint8Array(ETH_HEADER_BYTES + IPV4_HEADER_BYTES + udpBytes);
  writeEthernetHeader(frame, macs.dst, macs.src, ETHERTYPE_IPV4);
  writeIpv4Header(frame, ETH_HEADER_BYTES, src, dst, IPPROTO_UDP, udpBytes, ipId);
  const at = ETH_HEADER_BYTES + IPV4_HEADER_BYTES;
  frame[at] = srcPort >>> 8;
  frame[at + 1] = srcPort & 0xFF;
  frame[at + 2] = dstPort >>> 8;
  frame[at + 3] = dstPort & 0xFF;
  frame[at + 4] = udpBytes >>> 8;
  frame[at + 5] = udpBytes & 0xFF;
  frame.set(payload, at + UDP_HEADER_BYTES);
  const sum = internetChecksum(
    frame,
    at,
    frame.length,
    ipv4PseudoHeaderSum(frame, ETH_HEADER_BYTES, IPPROTO_UDP, udpBytes),
  );
  // 0 means "no checksum" in UDP: send its other ones' complement form.
  const field = sum === 0 ? 0xFFFF : sum;
  frame[at + 6] = field >>> 8;
  frame[at + 7] = field & 0xFF;
  return frame;
}
