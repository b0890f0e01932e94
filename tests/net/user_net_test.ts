/**
 * Tests for the user-mode router (UserNet) driven with a guest's frames and real host sockets on
 * 127.0.0.1: ARP, DHCP, ICMP echo, DNS, TCP through the gateway (handshake, data both ways, the
 * guest's window honoured, retransmission on the clock, out-of-order segments, back-pressure,
 * FIN and RST), UDP, hostfwd TCP and UDP, restrict=on and the host-address policy.
 */
import { assert, assertEquals } from "../assert.ts";
import { answerDhcp } from "../../lib/net/dhcp_server.ts";
import { buildDnsReply, parseDnsQuery } from "../../lib/net/dns_message.ts";
import { readAddr } from "../../lib/net/ipv4.ts";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from "../../lib/net/tcp_segment.ts";
import { RECEIVE_WINDOW_BYTES } from "../../lib/net/tcp_connection.ts";
import { DNS, GATEWAY, GUEST, GUEST_MAC, ipv4Of, ROUTER_MAC, RouterGuest, tcpOf } from "./router_guest.ts";
import { freePort } from "../boot/net_pair.ts";

function arpRequest(target: number): Uint8Array {
  const f = new Uint8Array(42);
  f.fill(0xFF, 0, 6);
  f.set(GUEST_MAC, 6);
  f.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], 12);
  f.set(GUEST_MAC, 22);
  f.set([10, 0, 2, 15], 28);
  f.set([target >>> 24, (target >> 16) & 0xFF, (target >> 8) & 0xFF, target & 0xFF], 38);
  return f;
}

function dhcpMessage(type: number, extra: number[] = []): Uint8Array {
  const m = new Uint8Array(300);
  m.set([1, 1, 6, 0, 0xDE, 0xAD, 0xBE, 0xEF]);
  m.set(GUEST_MAC, 28);
  m.set([99, 130, 83, 99, 53, 1, type, ...extra, 255], 236);
  return m;
}

function dhcpOptions(m: Uint8Array): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  for (let at = 240; at < m.length && m[at] !== 255;) {
    if (m[at] === 0) {
      at++;
      continue;
    }
    out.set(m[at], m.subarray(at + 2, at + 2 + m[at + 1]));
    at += 2 + m[at + 1];
  }
  return out;
}

function dnsQuery(id: number, name: string, type: number): Uint8Array {
  const labels = name.split(".").flatMap((l) => [l.length, ...new TextEncoder().encode(l)]);
  return new Uint8Array([id >> 8, id & 0xFF, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, type, 0, 1]);
}

const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xFF);

Deno.test("UserNet answers ARP for the gateway and DNS addresses only", async () => {
  const g = await RouterGuest.open();
  try {
    g.net.send(arpRequest(GATEWAY));
    const reply = await g.next((f) => f[13] === 0x06 ? f : undefined, "ARP reply");
    assertEquals(reply.subarray(0, 6), GUEST_MAC);
    assertEquals(reply.subarray(22, 28), ROUTER_MAC);
    assertEquals(readAddr(reply, 28), GATEWAY);
    g.net.send(arpRequest(DNS));
    await g.next((f) => f[13] === 0x06 && readAddr(f, 28) === DNS ? f : undefined, "ARP reply for DNS");
    g.net.send(arpRequest(0x0A000263));
    assertEquals(g.net.drops.get("ARP for an address not ours"), 1);
  } finally {
    await g.close();
  }
});

Deno.test("UserNet's DHCP server offers and acknowledges 10.0.2.15 with mask, router and DNS", async () => {
  const g = await RouterGuest.open();
  try {
    g.udp(68, 0xFFFFFFFF, 67, dhcpMessage(1), 0);
    const offer = await g.nextUdp(68, "DHCPOFFER");
    assertEquals(offer.ip.dst, 0xFFFFFFFF);
    assertEquals(readAddr(offer.payload, 16), GUEST, "yiaddr");
    assertEquals(offer.payload.subarray(4, 8), new Uint8Array([0xDE, 0xAD, 0xBE, 0xEF]), "xid");
    const o = dhcpOptions(offer.payload);
    assertEquals(o.get(53), new Uint8Array([2]));
    assertEquals(o.get(1), new Uint8Array([255, 255, 255, 0]));
    assertEquals(o.get(3), new Uint8Array([10, 0, 2, 2]));
    assertEquals(o.get(6), new Uint8Array([10, 0, 2, 3]));
    g.udp(68, 0xFFFFFFFF, 67, dhcpMessage(3, [50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2]), 0);
    const ack = await g.nextUdp(68, "DHCPACK");
    assertEquals(dhcpOptions(ack.payload).get(53), new Uint8Array([5]));
    // A request for another address is refused.
    const nak = answerDhcp(dhcpMessage(3, [50, 4, 10, 0, 2, 99]), dhcpConfig());
    assert("type" in nak && nak.type === "nak");
  } finally {
    await g.close();
  }
});

function dhcpConfig() {
  return {
    serverAddr: GATEWAY,
    guestAddr: GUEST,
    netmask: 0xFFFFFF00,
    router: GATEWAY,
    dns: DNS,
    leaseSeconds: 60,
  };
}

Deno.test("UserNet answers pings to the gateway with the same identifier, sequence and data", async () => {
  const g = await RouterGuest.open();
  try {
    const data = bytes(56);
    g.ping(GATEWAY, 0x1234, 7, data);
    const reply = await g.next((f) => {
      const p = ipv4Of(f);
      return p?.protocol === 1 ? { f, p } : undefined;
    }, "echo reply");
    const at = reply.p.payloadStart;
    assertEquals(reply.f[at], 0, "echo reply type");
    assertEquals(reply.f.subarray(at + 4, at + 8), new Uint8Array([0x12, 0x34, 0, 7]));
    assertEquals(reply.f.subarray(at + 8, reply.p.end), data);
    assertEquals(reply.p.src, GATEWAY);
    g.ping(0x08080808, 1, 1, data);
    assertEquals(g.net.drops.get("ICMP beyond the router"), 1);
  } finally {
    await g.close();
  }
});

Deno.test("UserNet forwards DNS questions to the host's resolver: localhost, NXDOMAIN, NOTIMP, FORMERR", async () => {
  const g = await RouterGuest.open();
  try {
    g.udp(5353, DNS, 53, dnsQuery(0x4242, "localhost", 1));
    const a = await g.nextUdp(5353, "answer for localhost");
    assertEquals(a.ip.src, DNS);
    assertEquals(a.payload.subarray(0, 2), new Uint8Array([0x42, 0x42]));
    assertEquals(a.payload[3] & 0xF, 0, "NOERROR");
    assert(((a.payload[6] << 8) | a.payload[7]) >= 1, "at least one answer");
    assertEquals(a.payload.subarray(a.payload.length - 4), new Uint8Array([127, 0, 0, 1]));
    // Failures, from a resolver of our own (the host's would need a DNS server, not only loopback).
    const f = await RouterGuest.open({
      resolve: (name) =>
        Promise.reject(
          name === "gone.test" ? new Deno.errors.NotFound("no records") : new Error("timed out"),
        ),
    });
    try {
      f.udp(5354, DNS, 53, dnsQuery(1, "gone.test", 1));
      assertEquals((await f.nextUdp(5354, "NXDOMAIN")).payload[3] & 0xF, 3);
      f.udp(5357, DNS, 53, dnsQuery(1, "slow.test", 28));
      assertEquals((await f.nextUdp(5357, "SERVFAIL")).payload[3] & 0xF, 2);
    } finally {
      await f.close();
    }
    g.udp(5355, DNS, 53, dnsQuery(2, "localhost", 15)); // MX
    assertEquals((await g.nextUdp(5355, "NOTIMP")).payload[3] & 0xF, 4);
    g.udp(5356, DNS, 53, new Uint8Array([0, 3, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C]));
    assertEquals((await g.nextUdp(5356, "FORMERR")).payload[3] & 0xF, 1);
  } finally {
    await g.close();
  }
});

Deno.test("buildDnsReply encodes IPv4 and IPv6 answers and skips what is not an address", () => {
  const q = parseDnsQuery(dnsQuery(9, "Example.ORG", 28));
  assert(!("error" in q));
  assertEquals(q.name, "example.org");
  const r = buildDnsReply(q, 0, ["::1", "2001:db8::5", "nonsense"]);
  assertEquals(r[7], 2);
  assertEquals(
    r.subarray(r.length - 16),
    new Uint8Array([0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 5]),
  );
});

/** A TCP server on 127.0.0.1 that hands each connection to `serve`. */
function server(
  serve: (c: Deno.TcpConn) => Promise<void>,
): { port: number; close(): void; done: Promise<void> } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tasks: Promise<void>[] = [];
  const done = (async () => {
    for await (const c of l) tasks.push(serve(c).catch(() => {}));
  })().catch(() => {});
  return {
    port: l.addr.port,
    close: () => {
      try {
        l.close();
      } catch { /* already closed */ }
    },
    done: done.then(() => Promise.all(tasks)).then(() => {}),
  };
}

async function readAll(c: Deno.Conn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await c.read(buf);
    if (n === null) break;
    parts.push(buf.slice(0, n));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Opens a guest connection to gateway:port; returns the sequence numbers after the handshake. */
async function handshake(g: RouterGuest, port: number, guestPort: number, window = 65535) {
  const iss = 1000;
  g.tcp(guestPort, GATEWAY, port, TCP_SYN, iss, 0, undefined, window, 1460);
  const synAck = await g.nextTcp(guestPort, "SYN-ACK");
  assertEquals(synAck.flags, TCP_SYN | TCP_ACK);
  assertEquals(synAck.ack, iss + 1);
  assertEquals(synAck.mss, 1460);
  g.tcp(guestPort, GATEWAY, port, TCP_ACK, iss + 1, synAck.seq + 1, undefined, window);
  return { seq: iss + 1, ack: (synAck.seq + 1) >>> 0 };
}

Deno.test("UserNet TCP through the gateway: handshake, data both ways, FIN both ways", async () => {
  const got: Uint8Array[] = [];
  const srv = server(async (c) => {
    got.push(await readAll(c)); // until the guest's FIN
    await c.write(new TextEncoder().encode("reply from the host"));
    c.close();
  });
  const g = await RouterGuest.open();
  try {
    let { seq, ack } = await handshake(g, srv.port, 40001);
    const msg = bytes(3000);
    g.tcp(40001, GATEWAY, srv.port, TCP_ACK, seq, ack, msg.subarray(0, 1460));
    g.tcp(40001, GATEWAY, srv.port, TCP_ACK | TCP_PSH, seq + 1460, ack, msg.subarray(1460));
    seq += 3000;
    g.tcp(40001, GATEWAY, srv.port, TCP_ACK | TCP_FIN, seq, ack);
    seq += 1;
    let reply = "";
    for (;;) {
      const s = await g.nextTcp(40001, "the host's reply and FIN");
      if (s.payload.length > 0 && s.seq === ack) {
        reply += new TextDecoder().decode(s.payload);
        ack += s.payload.length;
      }
      if (s.flags & TCP_FIN) {
        assertEquals(s.ack, seq, "the FIN acknowledges the guest's FIN");
        ack += 1;
        break;
      }
    }
    g.tcp(40001, GATEWAY, srv.port, TCP_ACK, seq, ack);
    assertEquals(reply, "reply from the host");
    srv.close();
    await srv.done;
    assertEquals(got[0], msg);
  } finally {
    srv.close();
    await g.close();
  }
});

Deno.test("UserNet TCP honours the guest's window, retransmits on the clock, and reassembles out-of-order segments", async () => {
  const payload = bytes(20000, 5);
  let received: Uint8Array = new Uint8Array(0);
  const srv = server(async (c) => {
    await c.write(payload);
    received = await readAll(c);
    c.close();
  });
  const g = await RouterGuest.open();
  try {
    let { seq, ack } = await handshake(g, srv.port, 40002, 2000);
    // With a 2000-byte window, no more than 2000 bytes may be unacknowledged.
    const first = await g.nextTcp(40002, "first data");
    assertEquals(first.seq, ack);
    assert(
      await g.quiet((f) => {
        const s = tcpOf(f);
        return s !== undefined && s.dstPort === 40002 && s.seq + s.payload.length > ack + 2000;
      }, 300),
      "nothing beyond the window",
    );
    // Not acknowledging: the same bytes come again once the retransmission timer fires.
    const again = await g.next(
      (f) => {
        const s = tcpOf(f);
        return s?.dstPort === 40002 && s.seq === first.seq && s.payload.length > 0 ? s : undefined;
      },
      "a retransmission",
      5000,
    );
    assertEquals(again.payload, first.payload);
    assert(g.net.tcp.counters.retransmits >= 1);
    // Take everything, acknowledging as it comes with a larger window.
    const out = new Uint8Array(payload.length);
    let have = 0;
    while (have < payload.length) {
      const s = await g.nextTcp(40002, "data");
      const off = (s.seq - ack) | 0;
      if (off <= have && off + s.payload.length > have) {
        out.set(s.payload.subarray(have - off), have);
        have = off + s.payload.length;
      }
      g.tcp(40002, GATEWAY, srv.port, TCP_ACK, seq, ack + have, undefined, 16000);
    }
    ack += have;
    assertEquals(out, payload);
    // The guest sends three segments in the order 3, 1, 2; the host gets them in order.
    const up = bytes(3000, 9);
    g.tcp(40002, GATEWAY, srv.port, TCP_ACK, seq + 2000, ack, up.subarray(2000));
    const dup = await g.nextTcp(40002, "duplicate ACK for the gap");
    assertEquals(dup.ack, seq);
    g.tcp(40002, GATEWAY, srv.port, TCP_ACK, seq, ack, up.subarray(0, 1000));
    g.tcp(40002, GATEWAY, srv.port, TCP_ACK, seq + 1000, ack, up.subarray(1000, 2000));
    await g.next((f) => tcpOf(f)?.ack === seq + 3000 ? true : undefined, "ACK of all three");
    seq += 3000;
    g.tcp(40002, GATEWAY, srv.port, TCP_ACK | TCP_FIN, seq, ack);
    await g.next((f) => ((tcpOf(f)?.flags ?? 0) & TCP_FIN) ? true : undefined, "the host's FIN");
    srv.close();
    await srv.done;
    assertEquals(received, up);
    assert(g.net.tcp.counters.outOfOrder >= 1);
  } finally {
    srv.close();
    await g.close();
  }
});

Deno.test("UserNet TCP: a host that does not read closes the guest's window instead of buffering", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  let total = 0;
  const srv = server(async (c) => {
    await released;
    total = (await readAll(c)).length;
    c.close();
  });
  const g = await RouterGuest.open();
  try {
    let { seq, ack } = await handshake(g, srv.port, 40003);
    // Push far more than the window and the host's socket buffers can hold, as fast as acknowledged.
    const chunk = bytes(32000);
    const start = seq;
    let lastWindow = RECEIVE_WINDOW_BYTES;
    for (let i = 0; i < 4000 && lastWindow > 0; i++) {
      g.tcp(
        40003,
        GATEWAY,
        srv.port,
        TCP_ACK,
        seq,
        ack,
        chunk.subarray(0, Math.min(chunk.length, lastWindow)),
      );
      let s = await g.nextTcp(40003, "ACK");
      await new Promise((r) => setTimeout(r, 1));
      // Window updates may have queued up behind it: the latest ACK counts.
      for (;;) {
        const later = await g.next((f) => tcpOf(f)?.dstPort === 40003 ? tcpOf(f) : undefined, "later", 1)
          .catch(() => undefined);
        if (later === undefined) break;
        s = later;
      }
      seq = s.ack;
      lastWindow = s.window;
    }
    const sent = (seq - start) >>> 0;
    assertEquals(lastWindow, 0, `the window closed (took ${sent} bytes, window ${lastWindow})`);
    assert(sent < 64 << 20, `the router took ${sent} bytes`);
    // Data beyond a zero window is not taken.
    g.tcp(40003, GATEWAY, srv.port, TCP_ACK, seq, ack, chunk);
    const probeAck = await g.nextTcp(40003, "ACK of a probe");
    assertEquals(probeAck.ack, seq, "nothing taken beyond the zero window");
    release();
    // Once the host reads, the window opens again.
    await g.next(
      (f) => {
        const t = tcpOf(f);
        return t?.dstPort === 40003 && t.window > 0 ? true : undefined;
      },
      "window update",
      10000,
    );
    g.tcp(40003, GATEWAY, srv.port, TCP_ACK | TCP_FIN, seq, ack);
    await g.next((f) => ((tcpOf(f)?.flags ?? 0) & TCP_FIN) ? true : undefined, "FIN", 10000);
    srv.close();
    await srv.done;
    assertEquals(total, sent);
  } finally {
    release();
    srv.close();
    await g.close();
  }
});

Deno.test("UserNet TCP resets: a closed host port, a guest RST, a segment for no connection", async () => {
  const g = await RouterGuest.open();
  try {
    const closed = freePort();
    g.tcp(40004, GATEWAY, closed, TCP_SYN, 5, 0);
    const rst = await g.nextTcp(40004, "RST for a closed port");
    assertEquals(rst.flags & TCP_RST, TCP_RST);
    assertEquals(rst.ack, 6);
    g.tcp(40005, GATEWAY, closed, TCP_ACK, 77, 1234);
    const rst2 = await g.nextTcp(40005, "RST for no connection");
    assertEquals(rst2.flags, TCP_RST);
    assertEquals(rst2.seq, 1234);
    // A guest RST closes the host socket.
    let sawEof = false;
    const srv = server(async (c) => {
      sawEof = (await c.read(new Uint8Array(10)).catch(() => null)) === null;
    });
    const { seq } = await handshake(g, srv.port, 40006);
    g.tcp(40006, GATEWAY, srv.port, TCP_RST, seq, 0);
    srv.close();
    await srv.done;
    assert(sawEof);
    assertEquals(g.net.tcp.connectionCount, 0);
  } finally {
    await g.close();
  }
});

Deno.test("UserNet refuses the host's own addresses, and with restrict=on every outbound connection", async () => {
  const srv = server((c) => Promise.resolve(c.close()));
  const g = await RouterGuest.open();
  const r = await RouterGuest.open({ restrict: true });
  try {
    // 127.0.0.1 itself (not through the gateway) and our own subnet: refused.
    for (const [port, dst] of [[40010, 0x7F000001], [40011, 0x0A000205]]) {
      g.tcp(port, dst, srv.port, TCP_SYN, 1, 0);
      assertEquals((await g.nextTcp(port, "RST")).flags & TCP_RST, TCP_RST);
    }
    assertEquals(g.net.tcp.refused, 2);
    r.tcp(40012, GATEWAY, srv.port, TCP_SYN, 1, 0);
    assertEquals((await r.nextTcp(40012, "RST under restrict")).flags & TCP_RST, TCP_RST);
    r.udp(40013, GATEWAY, 9, new Uint8Array(4));
    assertEquals(r.net.drops.get("UDP to a destination not allowed"), 1);
    r.udp(40014, DNS, 53, dnsQuery(1, "localhost", 1));
    assertEquals((await r.nextUdp(40014, "REFUSED")).payload[3] & 0xF, 5);
  } finally {
    srv.close();
    await g.close();
    await r.close();
  }
});

Deno.test("UserNet UDP to the gateway reaches a host socket and the answer comes back", async () => {
  // Deno.listenDatagram is unstable; the router's own UdpSocket serves as the echo server.
  const { UdpSocket } = await import("../../lib/backends/udp_socket.ts");
  const host = await UdpSocket.open("127.0.0.1", 0);
  host.onMessage((d, h, p) => host.send(Uint8Array.from(d, (b) => b ^ 0xFF), h, p));
  const g = await RouterGuest.open();
  try {
    g.udp(40020, GATEWAY, host.localPort, new Uint8Array([1, 2, 3]));
    const back = await g.nextUdp(40020, "UDP answer");
    assertEquals(back.payload, new Uint8Array([0xFE, 0xFD, 0xFC]));
    assertEquals(back.ip.src, GATEWAY);
    assertEquals(back.srcPort, host.localPort);
  } finally {
    host.close();
    await g.close();
  }
});

Deno.test("UserNet hostfwd: TCP and UDP from a host client reach the guest and back, several rules at once", async () => {
  const tcpPort = freePort();
  const tcpPort2 = freePort();
  const udpPort = freePort();
  const g = await RouterGuest.open({
    hostForwards: [
      { protocol: "tcp", hostAddr: "127.0.0.1", hostPort: tcpPort, guestPort: 22 },
      { protocol: "tcp", hostAddr: "127.0.0.1", hostPort: tcpPort2, guestPort: 80 },
      { protocol: "udp", hostAddr: "127.0.0.1", hostPort: udpPort, guestPort: 53 },
    ],
  });
  try {
    const client = await Deno.connect({ hostname: "127.0.0.1", port: tcpPort });
    const syn = await g.next((f) => {
      const s = tcpOf(f);
      return s?.dstPort === 22 && s.flags === TCP_SYN ? { s, ip: ipv4Of(f)! } : undefined;
    }, "SYN towards the guest");
    assertEquals(syn.ip.src, GATEWAY);
    assertEquals(syn.ip.dst, GUEST);
    const from = syn.s.srcPort;
    const gseq = 9000;
    const reply = (flags: number, seq: number, ack: number, data?: Uint8Array) =>
      g.tcp(22, GATEWAY, from, flags, seq, ack, data);
    reply(TCP_SYN | TCP_ACK, gseq, syn.s.seq + 1);
    await client.write(new TextEncoder().encode("hello guest"));
    const data = await g.next((f) => {
      const s = tcpOf(f);
      return s?.dstPort === 22 && s.payload.length > 0 ? s : undefined;
    }, "client data");
    assertEquals(new TextDecoder().decode(data.payload), "hello guest");
    reply(
      TCP_ACK | TCP_PSH,
      gseq + 1,
      data.seq + data.payload.length,
      new TextEncoder().encode("hello host"),
    );
    const buf = new Uint8Array(64);
    const n = await client.read(buf);
    assertEquals(new TextDecoder().decode(buf.subarray(0, n!)), "hello host");
    client.close();
    const fin = await g.next((f) => {
      const s = tcpOf(f);
      return s?.dstPort === 22 && (s.flags & TCP_FIN) ? s : undefined;
    }, "FIN after the client closed");
    reply(TCP_ACK | TCP_FIN, gseq + 11, fin.seq + 1);

    // A guest port with nothing listening: the client sees the connection closed.
    const c2 = await Deno.connect({ hostname: "127.0.0.1", port: tcpPort2 });
    const syn2 = await g.next((f) => {
      const s = tcpOf(f);
      return s?.dstPort === 80 && s.flags === TCP_SYN ? s : undefined;
    }, "SYN to port 80");
    g.tcp(80, GATEWAY, syn2.srcPort, TCP_RST | TCP_ACK, 0, syn2.seq + 1);
    assertEquals(await c2.read(new Uint8Array(4)).catch(() => null), null);
    c2.close();

    const { UdpSocket } = await import("../../lib/backends/udp_socket.ts");
    const uc = await UdpSocket.open("127.0.0.1", 0);
    const answered = new Promise<Uint8Array>((r) => uc.onMessage((d) => r(d)));
    uc.send(new Uint8Array([7, 7]), "127.0.0.1", udpPort);
    const dg = await g.nextUdp(53, "UDP towards the guest");
    assertEquals(dg.payload, new Uint8Array([7, 7]));
    g.udp(53, GATEWAY, dg.srcPort, new Uint8Array([8, 8, 8]));
    assertEquals(await answered, new Uint8Array([8, 8, 8]));
    uc.close();
  } finally {
    await g.close();
  }
});
