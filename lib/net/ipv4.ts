/**
 * IPv4 (RFC 791) for the user-mode network: checking a guest's packet header (version, lengths,
 * header checksum; fragments refused, options skipped) and writing ours (no options, DF set, TTL
 * 64). Addresses are unsigned 32-bit numbers, 10.0.2.15 being 0x0A00020F.
 */
import { internetChecksum, onesComplementSum } from "./checksum.ts";

export const IPV4_HEADER_BYTES = 20;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPV4_BROADCAST = 0xFFFF_FFFF;

/** A checked IPv4 packet inside a frame: the header at `start`, the payload at `payloadStart..end`. */
export interface Ipv4Packet {
  start: number;
  payloadStart: number;
  end: number;
  protocol: number;
  src: number;
  dst: number;
  ttl: number;
}

/** Why a guest's IPv4 packet was refused (a counter name), or the packet. */
export type Ipv4Result = Ipv4Packet | "truncated" | "bad header" | "bad checksum" | "fragment";

/** Checks the IPv4 header starting at `start` of `frame`; trailing Ethernet padding is ignored. */
export function parseIpv4(frame: Uint8Array, start: number): Ipv4Result {
  if (frame.length - start < IPV4_HEADER_BYTES) return "truncated";
  const versionIhl = frame[start];
  const headerBytes = (versionIhl & 0x0F) * 4;
  const totalBytes = (frame[start + 2] << 8) | frame[start + 3];
  if (versionIhl >> 4 !== 4 || headerBytes < IPV4_HEADER_BYTES || totalBytes < headerBytes) {
    return "bad header";
  }
  if (start + totalBytes > frame.length) return "truncated";
  if (onesComplementSum(frame, start, start + headerBytes) !== 0xFFFF) return "bad checksum";
  // More-fragments set or a non-zero offset: reassembly is left out, as the guest sets DF anyway.
  if ((((frame[start + 6] << 8) | frame[start + 7]) & 0x3FFF) !== 0) return "fragment";
  return {
    start,
    payloadStart: start + headerBytes,
    end: start + totalBytes,
    protocol: frame[start + 9],
    src: readAddr(frame, start + 12),
    dst: readAddr(frame, start + 16),
    ttl: frame[start + 8],
  };
}

/** Writes a 20-byte header at `at` for a payload of `payloadBytes` and fills in its checksum. */
export function writeIpv4Header(
  frame: Uint8Array,
  at: number,
  src: number,
  dst: number,
  protocol: number,
  payloadBytes: number,
  id: number,
): void {
  const total = IPV4_HEADER_BYTES + payloadBytes;
  frame[at] = 0x45;
  frame[at + 1] = 0;
  frame[at + 2] = total >>> 8;
  frame[at + 3] = total & 0xFF;
  frame[at + 4] = (id >>> 8) & 0xFF;
  frame[at + 5] = id & 0xFF;
  frame[at + 6] = 0x40; // DF
  frame[at + 7] = 0;
  frame[at + 8] = 64;
  frame[at + 9] = protocol;
  frame[at + 10] = frame[at + 11] = 0;
  writeAddr(frame, at + 12, src);
  writeAddr(frame, at + 16, dst);
  const sum = internetChecksum(frame, at, at + IPV4_HEADER_BYTES);
  frame[at + 10] = sum >>> 8;
  frame[at + 11] = sum & 0xFF;
}

export function readAddr(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

export function writeAddr(bytes: Uint8Array, at: number, addr: number): void {
  bytes[at] = addr >>> 24;
  bytes[at + 1] = (addr >>> 16) & 0xFF;
  bytes[at + 2] = (addr >>> 8) & 0xFF;
  bytes[at + 3] = addr & 0xFF;
}

/** `10.0.2.15` → 0x0A00020F; undefined if `text` is not a dotted quad. */
export function parseIpv4Address(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (m === null) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function formatIpv4(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xFF}.${(addr >>> 8) & 0xFF}.${addr & 0xFF}`;
}
