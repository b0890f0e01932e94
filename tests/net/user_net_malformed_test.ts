/**
 * Malformed guest frames at the user-mode router (issue 12: every guest frame is untrusted): a
 * fixed-seed pass of truncated, bit-flipped and length-mangled Ethernet, ARP, IPv4, ICMP, UDP,
 * DHCP, DNS and TCP frames, half of them with their checksums recomputed so the damage reaches the
 * parsers behind the checksum checks. The router must never throw, must count what it drops, and
 * must keep its tables bounded. restrict=on keeps every mutated destination from becoming a real
 * connection; a hostfwd connection gives the TCP state machine an established flow to abuse.
 */
import { assert } from "../assert.ts";
import { internetChecksum, ipv4PseudoHeaderSum } from "../../lib/net/checksum.ts";
import { MAX_TCP_CONNECTIONS } from "../../lib/backends/user_net_tcp.ts";
import { TCP_ACK, TCP_SYN } from "../../lib/net/tcp_segment.ts";
import { freePort } from "../boot/net_pair.ts";
import { DNS, GATEWAY, guestTcpFrame, ipv4Frame, RouterGuest, tcpOf } from "./router_guest.ts";
import { buildUdpFrame } from "../../lib/net/udp.ts";
import { GUEST, GUEST_MAC, ROUTER_MAC } from "./router_guest.ts";

/** xorshift32: the same frames on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}

/** Recomputes the IPv4 header checksum and the TCP/UDP/ICMP one over what the frame holds. */
function fixChecksums(f: Uint8Array): void {
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

function arp(): Uint8Array {
  const f = new Uint8Array(42);
  f.fill(0xFF, 0, 6);
  f.set(GUEST_MAC, 6);
  f.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], 12);
  f.set(GUEST_MAC, 22);
  f.set([10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 2], 28);
  return f;
}

function dhcp(): Uint8Array {
  const m = new Uint8Array(300);
  m.set([1, 1, 6, 0, 1, 2, 3, 4]);
  m.set(GUEST_MAC, 28);
  m.set([99, 130, 83, 99, 53, 1, 1, 55, 3, 1, 3, 6, 255], 236);
  return buildUdpFrame({ dst: ROUTER_MAC, src: GUEST_MAC }, 0, 68, 0xFFFFFFFF, 67, m, 1);
}

function dns(): Uint8Array {
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

function ping(): Uint8Array {
  const icmp = new Uint8Array(64);
  icmp.set([8, 0, 0, 0, 0, 1, 0, 1]);
  const c = internetChecksum(icmp, 0, icmp.length);
  icmp[2] = c >> 8;
  icmp[3] = c & 0xFF;
  return ipv4Frame(GUEST, GATEWAY, 1, icmp);
}

Deno.test("UserNet drops malformed frames of every kind with a counter, never throws, stays bounded", async () => {
  const fwdPort = freePort();
  const g = await RouterGuest.open({
    restrict: true,
    hostForwards: [{ protocol: "tcp", hostAddr: "127.0.0.1", hostPort: fwdPort, guestPort: 22 }],
    resolve: () => Promise.resolve(["192.0.2.1"]),
  });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: fwdPort });
  try {
    // An established hostfwd connection for the TCP templates to hit.
    const syn = await g.next((f) => {
      const s = tcpOf(f);
      return s?.dstPort === 22 ? s : undefined;
    }, "SYN");
    g.tcp(22, GATEWAY, syn.srcPort, TCP_SYN | TCP_ACK, 500, syn.seq + 1);
    const synAckd = syn.seq + 1;
    const templates: (() => Uint8Array)[] = [
      arp,
      dhcp,
      dns,
      ping,
      () =>
        buildUdpFrame({ dst: ROUTER_MAC, src: GUEST_MAC }, GUEST, 4000, GATEWAY, 9, new Uint8Array(40), 1),
      () => guestTcpFrame(41000, GATEWAY, 80, TCP_SYN, 1, 0, new Uint8Array(0), 65535, 1460),
      () =>
        guestTcpFrame(22, GATEWAY, syn.srcPort, TCP_ACK, 501, synAckd, new Uint8Array(700).fill(7), 8192, 0),
    ];
    const rand = rng(0x5EED_0012);
    const heapBefore = Deno.memoryUsage().heapUsed;
    let thrown = 0;
    const N = 6000;
    for (let i = 0; i < N; i++) {
      let f = templates[Math.floor(rand() * templates.length)]();
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
      try {
        g.net.send(f);
      } catch {
        thrown++;
      }
      if ((i & 255) === 0) await new Promise((r) => setTimeout(r, 0));
    }
    assert(thrown === 0, `${thrown} frames threw`);
    const drops = g.net.droppedFrames;
    assert(drops > N / 4, `only ${drops} of ${N} mangled frames counted as dropped`);
    const reasons = [...g.net.drops.keys()];
    for (const kind of ["IPv4 bad checksum", "IPv4 truncated", "TCP bad checksum", "UDP bad checksum"]) {
      assert(reasons.includes(kind), `no "${kind}" drops among ${reasons.join(", ")}`);
    }
    assert(reasons.some((r) => r.startsWith("DHCP")), reasons.join(", "));
    assert(reasons.some((r) => r.startsWith("DNS")), reasons.join(", "));
    assert(g.net.tcp.connectionCount <= MAX_TCP_CONNECTIONS);
    assert(g.net.udp.flowCount === 0, "restrict=on opened no UDP flow");
    const grown = Deno.memoryUsage().heapUsed - heapBefore;
    assert(grown < 64 << 20, `heap grew ${grown} bytes`);
  } finally {
    client.close();
    await g.close();
  }
});
