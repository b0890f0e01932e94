/**
 * TCP segments (RFC 9293 §3.1) over IPv4 for the user-mode network: checking a guest's segment
 * (data offset, checksum, the MSS option; other options skipped, bad option lengths refused) and
 * building ours with a full checksum. The state machine is tcp_connection.ts.
 */
import { internetChecksum, ipv4PseudoHeaderSum, onesComplementSum } from "./checksum.ts";
import { ETH_HEADER_BYTES, ETHERTYPE_IPV4, writeEthernetHeader } from "./ethernet.ts";
import { IPPROTO_TCP, IPV4_HEADER_BYTES, type Ipv4Packet, writeIpv4Header } from "./ipv4.ts";

export const TCP_HEADER_BYTES = 20;
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
const OPT_END = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** The MSS option's value, or 0 when absent (only meaningful on SYN). */
  mss: number;
  /** The payload, a view into the guest's frame (copy it to keep it). */
  payload: Uint8Array;
}

export function parseTcp(
  frame: Uint8Array,
  packet: Ipv4Packet,
): TcpSegment | "truncated" | "bad checksum" | "bad options" {
  const at = packet.payloadStart;
  const length = packet.end - at;
  if (length < TCP_HEADER_BYTES) return "truncated";
  const headerBytes = (frame[at + 12] >> 4) * 4;
  if (headerBytes < TCP_HEADER_BYTES || headerBytes > length) return "truncated";
  const pseudo = ipv4PseudoHeaderSum(frame, packet.start, IPPROTO_TCP, length);
  if (onesComplementSum(frame, at, packet.end, pseudo) !== 0xFFFF) return "bad checksum";
  let mss = 0;
  for (let o = at + TCP_HEADER_BYTES; o < at + headerBytes;) {
    const kind = frame[o];
    if (kind === OPT_END) break;
    if (kind === OPT_NOP) {
      o++;
      continue;
    }
    if (o + 1 >= at + headerBytes) return "bad options";
    const len = frame[o + 1];
    if (len < 2 || o + len > at + headerBytes) return "bad options";
    if (kind === OPT_MSS && len === 4) mss = (frame[o + 2] << 8) | frame[o + 3];
    o += len;
  }
  return {
    srcPort: (frame[at] << 8) | frame[at + 1],
    dstPort: (frame[at + 2] << 8) | frame[at + 3],
    seq: u32(frame, at + 4),
    ack: u32(frame, at + 8),
    flags: frame[at + 13],
    window: (frame[at + 14] << 8) | frame[at + 15],
    mss,
    payload: frame.subarray(at + headerBytes, packet.end),
  };
}

/** Addresses and ports of one connection, as the guest sees them (remote = the far end). */
export interface TcpEndpoints {
  guestMac: Uint8Array;
  routerMac: Uint8Array;
  guestAddr: number;
  guestPort: number;
  remoteAddr: number;
  remotePort: number;
}

/**
 * A frame from the remote end to the guest: `flags`, `seq`, `ack`, `window`, the MSS option when
 * `mss` is non-zero, and `payloadBytes` bytes that `fillPayload` writes at the offset it is given.
 */
export function buildTcpFrame(
  ep: TcpEndpoints,
  flags: number,
  seq: number,
  ack: number,
  window: number,
  mss: number,
  payloadBytes: number,
  fillPayload: ((frame: Uint8Array, at: number) => void) | null,
  ipId: number,
): Uint8Array {
  const headerBytes = TCP_HEADER_BYTES + (mss !== 0 ? 4 : 0);
  const tcpBytes = headerBytes + payloadBytes;
  const frame = new Uint8Array(ETH_HEADER_BYTES + IPV4_HEADER_BYTES + tcpBytes);
  writeEthernetHeader(frame, ep.guestMac, ep.routerMac, ETHERTYPE_IPV4);
  writeIpv4Header(frame, ETH_HEADER_BYTES, ep.remoteAddr, ep.guestAddr, IPPROTO_TCP, tcpBytes, ipId);
  const at = ETH_HEADER_BYTES + IPV4_HEADER_BYTES;
  frame[at] = ep.remotePort >>> 8;
  frame[at + 1] = ep.remotePort & 0xFF;
  frame[at + 2] = ep.guestPort >>> 8;
  frame[at + 3] = ep.guestPort & 0xFF;
  setU32(frame, at + 4, seq);
  setU32(frame, at + 8, ack);
  frame[at + 12] = (headerBytes / 4) << 4;
  frame[at + 13] = flags;
  frame[at + 14] = window >>> 8;
  frame[at + 15] = window & 0xFF;
  if (mss !== 0) frame.set([OPT_MSS, 4, mss >>> 8, mss & 0xFF], at + TCP_HEADER_BYTES);
  if (fillPayload !== null) fillPayload(frame, at + headerBytes);
  const sum = internetChecksum(
    frame,
    at,
    frame.length,
    ipv4PseudoHeaderSum(frame, ETH_HEADER_BYTES, IPPROTO_TCP, tcpBytes),
  );
  frame[at + 16] = sum >>> 8;
  frame[at + 17] = sum & 0xFF;
  return frame;
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function setU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xFF;
  b[at + 2] = (v >>> 8) & 0xFF;
  b[at + 3] = v & 0xFF;
}
