/**
 * Malformed guest frames for the user-mode router: well-formed templates of every kind the router
 * parses (ARP, DHCP, DNS, ICMP echo, UDP, TCP SYN) and `mangle`, which truncates them, flips bytes,
 * sets length fields to extremes, breaks options or adds garbage, then recomputes the checksums half
 * of the time so the damage reaches the parsers behind the checksum checks. Shared by
 * user_net_malformed_test.ts and the `user-net` target of `deno task fuzz`.
 */
import { internetChecksum, ipv4PseudoHeaderSum } from "../../lib/net/checksum.ts";
import { TCP_SYN } from "../../lib/net/tcp_segment.ts";
import { buildUdpFrame } from "../../lib/net/udp.ts";
import { DNS, GATEWAY, GUEST, GUEST_MAC, guestTcpFrame, ipv4Frame, ROUTER_MAC } from "./router_guest.ts";

/** Recomputes the IPv4 header checksum and the TCP/UDP/ICMP one over what the frame holds. */
export function fixChecksums(f: Uint8Array): void {
  if (f.length < 34 || f[12] !== 0x08 || f[13] !== 0) return;
  const ihl = (f[14] & 0xF) * 4;
  if (ihl < 20 || 14 + ihl > f.length) return;
  f[24] = f[25] = 0;
  const h = internetChecksum(f, 14, 14 + ihl);
  f[24] = h >> 8;
  f[25] = h & 0xFF;
  const total = Math.min((f[16] << 8) | f[17], f.length - 14);
  const at = 14 + ihl;
  const len = total - ihl;
  if (len <= 0) return;
  const proto = f[23];
  const field = proto === 6 ? 16 : proto === 17 ? 6 : proto === 1 ? 2 : -1;
  if (field < 0 || len < field + 2) return;
  f[at + field] = f[at + field + 1] = 0;
  const pseudo = proto === 1 ? 0 : ipv4PseudoHeaderSum(f, 14, proto, len);
  const c = internetChecksum(f, at, at + len, pseudo);
  f[at + field] = c >> 8;
  f[at + field + 1] = c & 0xFF;
}

export function arp(): Uint8Array {
  const f = new Uint8Array(42);
  f.fill(0xFF, 0, 6);
  f.set(GUEST_MAC, 6);
  f.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], 12);
  f.set(GUEST_MAC, 22);
  f.set([10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 2], 28);
  return f;
}

export function dhcp(): Uint8Array {
  const m = new Uint8Array(300);
  m.set([1, 1, 6, 0, 1, 2, 3, 4]);
  m.set(GUEST_MAC, 28);
  m.set([99, 130, 83, 99, 53, 1, 1, 55, 3, 1, 3, 6, 255], 236);
  return buildUdpFrame({ dst: ROUTER_MAC, src: GUEST_MAC }, 0, 68, 0xFFFFFFFF, 67, m, 1);
}

export function dns(): Uint8Array {
  const q = new Uint8Array([
    0,
    1,
    1,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    7,
    ...new TextEncoder().encode("example"),
    3,
    99,
    111,
    109,
    0,
    0,
    1,
    0,
    1,
  ]);
  return buildUdpFrame({ dst: ROUTER_MAC, src: GUEST_MAC }, GUEST, 3333, DNS, 53, q, 1);
}

export function ping(): Uint8Array {
  const icmp = new Uint8Array(64);
  icmp.set([8, 0, 0, 0, 0, 1, 0, 1]);
  const c = internetChecksum(icmp, 0, icmp.length);
  icmp[2] = c >> 8;
  icmp[3] = c & 0xFF;
  return ipv4Frame(GUEST, GATEWAY, 1, icmp);
}

/** Templates that need no connection state: each call builds a fresh frame. */
export const FRAME_TEMPLATES: (() => Uint8Array)[] = [
  arp,
  dhcp,
  dns,
  ping,
  () => buildUdpFrame({ dst: ROUTER_MAC, src: GUEST_MAC }, GUEST, 4000, GATEWAY, 9, new Uint8Array(40), 1),
  () => guestTcpFrame(41000, GATEWAY, 80, TCP_SYN, 1, 0, new Uint8Array(0), 65535, 1460),
];

/** A mangled copy of `f` (see the module comment); `rand` gives numbers in [0, 1). */
export function mangle(frame: Uint8Array, rand: () => number): Uint8Array {
  let f = frame;
  switch (Math.floor(rand() * 5)) {
    case 0: // truncated anywhere
      f = f.slice(0, Math.floor(rand() * f.length));
      break;
    case 1: // a few random bytes anywhere
      for (let k = 0; k < 1 + rand() * 4; k++) f[Math.floor(rand() * f.length)] = rand() * 256;
      break;
    case 2: // a header length field set to an extreme
      {
        const fields = [14, 16, 17, 38, 39, 46, 47, 42 + 236 + 6];
        const at = fields[Math.floor(rand() * fields.length)];
        if (at < f.length) f[at] = rand() < 0.5 ? 0xFF : 0;
      }
      break;
    case 3: // huge or broken options: TCP data offset 15, IHL 15, DHCP option running past the end
      if (f.length > 46) f[46] = 0xF0 | (f[46] & 0xF);
      if (rand() < 0.5) f[14] = 0x4F;
      if (f.length > 300) f[42 + 240 + 4] = 0xFE;
      break;
    default: // random tail garbage, lengths left claiming otherwise
    {
      const g2 = new Uint8Array(f.length + Math.floor(rand() * 200));
      g2.set(f);
      for (let k = f.length; k < g2.length; k++) g2[k] = rand() * 256;
      f = g2;
    }
  }
  if (rand() < 0.5) fixChecksums(f);
  return f;
}
