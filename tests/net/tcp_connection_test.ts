/**
 * Tests for TcpConnection alone, on a stepped machine clock: retransmission fires on the clock's
 * time with exponential backoff, the guest's window caps what is in flight, and a fixed-seed storm
 * of random segments on an established connection never throws nor lets the bytes held for the
 * host exceed the advertised window.
 */
import { assert, assertEquals } from "../assert.ts";
import { NetTimers } from "../../lib/net/net_timers.ts";
import { ESTABLISHED, RECEIVE_WINDOW_BYTES, TcpConnection } from "../../lib/net/tcp_connection.ts";
import { ETH_HEADER_BYTES } from "../../lib/net/ethernet.ts";
import { parseIpv4 } from "../../lib/net/ipv4.ts";
import { parseTcp, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type TcpSegment } from "../../lib/net/tcp_segment.ts";
import { SteppedClock } from "../pc/stepped_clock.ts";

function parse(f: Uint8Array): TcpSegment {
  const p = parseIpv4(f, ETH_HEADER_BYTES);
  if (typeof p === "string") throw new Error(p);
  const s = parseTcp(f, p);
  if (typeof s === "string") throw new Error(s);
  return s;
}

function seg(
  flags: number,
  seq: number,
  ack: number,
  window: number,
  payload = new Uint8Array(0),
): TcpSegment {
  return { srcPort: 22, dstPort: 40000, seq: seq >>> 0, ack: ack >>> 0, flags, window, mss: 1460, payload };
}

function setup() {
  const clock = new SteppedClock();
  const timers = new NetTimers(clock.clock, "test");
  const out: TcpSegment[] = [];
  const host = { bytes: 0, written: 0, resets: 0, ends: 0, closed: 0 };
  const conn = new TcpConnection(
    {
      guestMac: new Uint8Array(6),
      routerMac: new Uint8Array(6),
      guestAddr: 0x0A00020F,
      guestPort: 22,
      remoteAddr: 0x0A000202,
      remotePort: 40000,
    },
    {
      data: (b) => host.bytes += b.length,
      end: () => host.ends++,
      reset: () => host.resets++,
      established: () => {},
      room: () => {},
      closed: () => host.closed++,
    },
    {
      iss: 1000,
      timers,
      output: (f) => out.push(parse(f)),
      nextIpId: () => 1,
      counters: { retransmits: 0, outOfOrder: 0, rejected: 0 },
    },
  );
  conn.connect();
  const synSeg = out.shift()!;
  assertEquals(synSeg.flags, TCP_SYN);
  conn.segment(seg(TCP_SYN | TCP_ACK, 5000, 1001, 65535));
  assertEquals(conn.state, ESTABLISHED);
  out.length = 0;
  return { clock, conn, out, host };
}

Deno.test("TcpConnection retransmits on the machine clock with backoff, within the guest's window", () => {
  const { clock, conn, out } = setup();
  conn.segment(seg(TCP_ACK, 5001, 1001, 2000)); // the guest shrinks its window to 2000
  conn.hostData(new Uint8Array(5000).fill(1));
  assertEquals(out.map((s) => s.payload.length), [1460, 540], "only 2000 bytes in flight");
  out.length = 0;
  clock.advanceNs(999e6);
  assertEquals(out.length, 0, "nothing before the 1 s initial RTO");
  clock.advanceNs(2e6);
  assertEquals(out.map((s) => s.seq), [1001, 2461], "go-back-N from the oldest unacknowledged byte");
  out.length = 0;
  clock.advanceNs(1990e6);
  assertEquals(out.length, 0, "the RTO doubled");
  clock.advanceNs(20e6);
  assertEquals(out[0].seq, 1001);
  out.length = 0;
  // Acknowledging opens the window and the rest flows; RTO restarts from the estimator.
  conn.segment(seg(TCP_ACK, 5001, 3001, 65535));
  assertEquals(out.reduce((n, s) => n + s.payload.length, 0), 3000);
});

Deno.test("TcpConnection survives a fixed-seed storm of random segments within its bounds", () => {
  const { conn, out, host } = setup();
  let s = 0x1234567;
  const rand = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x1_0000_0000;
  };
  conn.hostData(new Uint8Array(100000));
  for (let i = 0; i < 20000 && conn.state !== 10; i++) {
    const near = rand() < 0.8;
    const seq = near ? 5001 + host.bytes + Math.floor((rand() - 0.3) * 70000) : Math.floor(rand() * 2 ** 32);
    const ack = near ? 1001 + Math.floor(rand() * 110000) : Math.floor(rand() * 2 ** 32);
    let flags = TCP_ACK;
    if (rand() < 0.01) flags |= TCP_FIN;
    if (rand() < 0.002) flags |= TCP_RST;
    if (rand() < 0.01) flags |= TCP_SYN;
    if (rand() < 0.05) flags &= ~TCP_ACK;
    const before = out.length;
    conn.segment(seg(flags, seq, ack, Math.floor(rand() * 65536), new Uint8Array(Math.floor(rand() * 3000))));
    assert(out.length - before <= 64, "a bounded burst per segment");
    assert(host.bytes - host.written <= RECEIVE_WINDOW_BYTES, "never more than the window held for the host");
    if (rand() < 0.3) {
      const n = Math.floor(rand() * (host.bytes - host.written + 1));
      host.written += n;
      conn.hostWritten(n);
    }
    out.length = 0;
  }
});
