/**
 * ARP for IPv4 over Ethernet (RFC 826): the router answers requests for the addresses it owns
 * (gateway, DNS) so the guest can reach them, and learns nothing else. Replies and gratuitous
 * announcements from the guest are ignored; the router learns the guest's MAC from its frames.
 */
import { ETH_HEADER_BYTES, ETHERTYPE_ARP, writeEthernetHeader } from "./ethernet.ts";
import { readAddr, writeAddr } from "./ipv4.ts";

const ARP_BYTES = 28;
const ARP_REQUEST = 1;
const ARP_REPLY = 2;

/** An ARP request's sender and the address it asks about, or a reason to drop it. */
export type ArpRequest =
  | { senderMac: Uint8Array; senderAddr: number; targetAddr: number }
  | "not a request"
  | "truncated";

export function parseArpRequest(frame: Uint8Array): ArpRequest {
  const a = ETH_HEADER_BYTES;
  if (frame.length < a + ARP_BYTES) return "truncated";
  // htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4.
  if (
    frame[a] !== 0 || frame[a + 1] !== 1 || frame[a + 2] !== 0x08 || frame[a + 3] !== 0 ||
    frame[a + 4] !== 6 || frame[a + 5] !== 4
  ) return "truncated";
  if (frame[a + 6] !== 0 || frame[a + 7] !== ARP_REQUEST) return "not a request";
  return {
    senderMac: frame.slice(a + 8, a + 14),
    senderAddr: readAddr(frame, a + 14),
    targetAddr: readAddr(frame, a + 24),
  };
}

/** A reply telling `toMac`/`toAddr` that `addr` is at `mac`. */
export function buildArpReply(mac: Uint8Array, addr: number, toMac: Uint8Array, toAddr: number): Uint8Array {
  const frame = new Uint8Array(ETH_HEADER_BYTES + ARP_BYTES);
  writeEthernetHeader(frame, toMac, mac, ETHERTYPE_ARP);
  const a = ETH_HEADER_BYTES;
  frame.set([0, 1, 0x08, 0, 6, 4, 0, ARP_REPLY], a);
  frame.set(mac, a + 8);
  writeAddr(frame, a + 14, addr);
  frame.set(toMac, a + 18);
  writeAddr(frame, a + 24, toAddr);
  return frame;
}
