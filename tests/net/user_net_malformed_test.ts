/**
 * Malformed guest frames at the user-mode router (issue 12: every guest frame is untrusted): a
 * fixed-seed pass of truncated, bit-flipped and length-mangled Ethernet, ARP, IPv4, ICMP, UDP,
 * DHCP, DNS and TCP frames, half of them with their checksums recomputed so the damage reaches the
 * parsers behind the checksum checks. The router must never throw, must count what it drops, and
 * must keep its tables bounded. restrict=on keeps every mutated destination from becoming a real
 * connection; a hostfwd connection gives the TCP state machine an established flow to abuse.
 */
import { assert } from "../assert.ts";
import { MAX_TCP_CONNECTIONS } from "../../lib/backends/user_net_tcp.ts";
import { TCP_ACK, TCP_SYN } from "../../lib/net/tcp_segment.ts";
import { freePort } from "../boot/net_pair.ts";
import { GATEWAY, guestTcpFrame, RouterGuest, tcpOf } from "./router_guest.ts";
import { FRAME_TEMPLATES, mangle } from "./malformed_frames.ts";

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
      ...FRAME_TEMPLATES,
      () =>
        guestTcpFrame(22, GATEWAY, syn.srcPort, TCP_ACK, 501, synAckd, new Uint8Array(700).fill(7), 8192, 0),
    ];
    const rand = rng(0x5EED_0012);
    const heapBefore = Deno.memoryUsage().heapUsed;
    let thrown = 0;
    const N = 6000;
    for (let i = 0; i < N; i++) {
      const f = mangle(templates[Math.floor(rand() * templates.length)](), rand);
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
