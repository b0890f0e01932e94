/**
 * Ethernet II framing (IEEE 802.3 §3.2 with DIX EtherTypes) as the user-mode network sees it: a
 * 14-byte header of destination MAC, source MAC and EtherType. No 802.1Q tags: the router's one
 * segment is untagged, so a tagged frame is an unknown EtherType and dropped.
 */

export const ETH_HEADER_BYTES = 14;
export const ETH_DST = 0;
export const ETH_SRC = 6;
export const ETH_TYPE = 12;

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86DD;

export const BROADCAST_MAC: Uint8Array = new Uint8Array([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);

/** Writes the 14-byte header at the start of `frame`. */
export function writeEthernetHeader(frame: Uint8Array, dst: Uint8Array, src: Uint8Array, type: number): void {
  frame.set(dst, ETH_DST);
  frame.set(src, ETH_SRC);
  frame[ETH_TYPE] = type >>> 8;
  frame[ETH_TYPE + 1] = type & 0xFF;
}

/** The EtherType of a frame at least ETH_HEADER_BYTES long. */
export function etherType(frame: Uint8Array): number {
  return (frame[ETH_TYPE] << 8) | frame[ETH_TYPE + 1];
}

/** True if bytes `at`..`at+5` of `frame` equal `mac`. */
export function macEquals(frame: Uint8Array, at: number, mac: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (frame[at + i] !== mac[i]) return false;
  return true;
}

/** `52:54:00:12:34:56`. */
export function formatMac(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join(":");
}
