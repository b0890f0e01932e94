/**
 * ICMP echo (RFC 792) for the user-mode network: the router answers pings to its own addresses.
 * Other ICMP messages from the guest are counted and dropped.
 */
import { internetChecksum, onesComplementSum } from "./checksum.ts";
import { ETH_HEADER_BYTES, ETHERTYPE_IPV4, writeEthernetHeader } from "./ethernet.ts";
import { IPPROTO_ICMP, IPV4_HEADER_BYTES, type Ipv4Packet, writeIpv4Header } from "./ipv4.ts";

const ICMP_ECHO_REPLY = 0;
const ICMP_ECHO_REQUEST = 8;

/**
 * The echo reply to an echo request in `packet` (same identifier, sequence and data), or a reason
 * to drop it.
 */
export function buildEchoReply(
  frame: Uint8Array,
  packet: Ipv4Packet,
  macs: { guest: Uint8Array; router: Uint8Array },
  ipId: number,
): Uint8Array | "not an echo request" | "bad checksum" | "truncated" {
  const icmpBytes = packet.end - packet.payloadStart;
  if (icmpBytes < 8) return "truncated";
  if (onesComplementSum(frame, packet.payloadStart, packet.end) !== 0xFFFF) return "bad checksum";
  if (frame[packet.payloadStart] !== ICMP_ECHO_REQUEST || frame[packet.payloadStart + 1] !== 0) {
    return "not an echo request";
  }
  const reply = new Uint8Array(ETH_HEADER_BYTES + IPV4_HEADER_BYTES + icmpBytes);
  writeEthernetHeader(reply, macs.guest, macs.router, ETHERTYPE_IPV4);
  writeIpv4Header(reply, ETH_HEADER_BYTES, packet.dst, packet.src, IPPROTO_ICMP, icmpBytes, ipId);
  const at = ETH_HEADER_BYTES + IPV4_HEADER_BYTES;
  reply.set(frame.subarray(packet.payloadStart, packet.end), at);
  reply[at] = ICMP_ECHO_REPLY;
  reply[at + 2] = reply[at + 3] = 0;
  const sum = internetChecksum(reply, at, reply.length);
  reply[at + 2] = sum >>> 8;
  reply[at + 3] = sum & 0xFF;
  return reply;
}
