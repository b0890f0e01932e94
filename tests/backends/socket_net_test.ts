/**
 * Tests for SocketNet: the spec grammar, QEMU's 4-byte big-endian length framing checked from raw
 * TCP peers (split reads), bad peers (oversized length, stalled mid-frame, never speaking) dropped
 * without holding up the others, several peers switched as one Ethernet segment, connect mode
 * retrying until the peer listens, and the USR2 description's counters.
 */
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { parseSocketNetSpec, SocketNet } from "../../lib/backends/socket_net.ts";
import { LaunchError } from "../../lib/support/errors.ts";
import { MAX_FRAME_BYTES } from "../../lib/virtio/net.ts";
import { setLogSink } from "../../lib/support/log.ts";

function prefixed(frame: Uint8Array): Uint8Array {
  const p = new Uint8Array(4 + frame.length);
  new DataView(p.buffer).setUint32(0, frame.length, false);
  p.set(frame, 4);
  return p;
}

/** An Ethernet frame from MAC ..:src to MAC ..:dst (0xFF: broadcast), `len` bytes filled with `fill`. */
function eth(dst: number, src: number, fill: number, len = 60): Uint8Array {
  const f = new Uint8Array(len).fill(fill);
  f.set(dst === 0xFF ? [255, 255, 255, 255, 255, 255] : [0x52, 0x54, 0, 0, 0, dst], 0);
  f.set([0x52, 0x54, 0, 0, 0, src], 6);
  return f;
}

/** Collects log lines while `fn` runs. */
async function withLog<T>(fn: (lines: string[]) => Promise<T>): Promise<T> {
  const lines: string[] = [];
  const old = setLogSink((l) => lines.push(l));
  try {
    return await fn(lines);
  } finally {
    setLogSink(old);
  }
}

/** Reads one length-prefixed frame. */
async function readFrame(conn: Deno.Conn): Promise<Uint8Array> {
  const len = new DataView((await readExactly(conn, 4)).buffer).getUint32(0, false);
  return await readExactly(conn, len);
}

/** True if nothing arrives on `conn` within `ms`. */
async function silent(conn: Deno.Conn, ms: number): Promise<boolean> {
  const buf = new Uint8Array(1);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"quiet">((r) => timer = setTimeout(() => r("quiet"), ms));
  const read = conn.read(buf).then(() => "data" as const, () => "data" as const);
  const r = await Promise.race([timeout, read]);
  clearTimeout(timer);
  return r === "quiet";
}

function connect(net: SocketNet): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port: net.localPort });
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  for (let done = 0; done < n;) {
    const k = await conn.read(out.subarray(done));
    if (k === null) throw new Error("eof");
    done += k;
  }
  return out;
}

Deno.test("parseSocketNetSpec accepts listen and connect forms and rejects the rest", () => {
  assertEquals(parseSocketNetSpec("listen:1234"), { mode: "listen", hostname: "127.0.0.1", port: 1234 });
  assertEquals(parseSocketNetSpec("listen:0.0.0.0:80"), { mode: "listen", hostname: "0.0.0.0", port: 80 });
  assertEquals(parseSocketNetSpec("connect:example.org:5555"), {
    mode: "connect",
    hostname: "example.org",
    port: 5555,
  });
  assertEquals(parseSocketNetSpec("connect:[::1]:7"), { mode: "connect", hostname: "::1", port: 7 });
  for (const bad of ["listen:", "connect:1234", "connect:h:0", "listen:70000", "udp:1:2", "listen:a:b"]) {
    assertThrows(() => parseSocketNetSpec(bad), LaunchError);
  }
});

Deno.test("SocketNet listen on a busy port is a LaunchError", () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    assertThrows(() => SocketNet.open(`listen:127.0.0.1:${l.addr.port}`), LaunchError);
  } finally {
    l.close();
  }
});

Deno.test("SocketNet frames are QEMU-compatible length-prefixed, split across reads or not", async () => {
  const net = SocketNet.open("listen:127.0.0.1:0");
  const got: Uint8Array[] = [];
  net.onFrame((f) => got.push(f));
  const raw = await connect(net);
  try {
    await net.whenConnected();
    const a = eth(0xFF, 1, 0xAA);
    const c = eth(0xFF, 1, 0xCC, 1514);
    const stream = new Uint8Array([...prefixed(a), ...prefixed(c)]);
    // Dribble the first bytes to split the length prefix itself.
    await raw.write(stream.subarray(0, 2));
    await new Promise((r) => setTimeout(r, 5));
    await raw.write(stream.subarray(2, 70));
    await raw.write(stream.subarray(70));
    await until(() => got.length === 2, "two frames");
    assertEquals(got, [a, c]);
    const out = eth(1, 9, 0x33);
    net.send(out);
    assertEquals(await readExactly(raw, 64), prefixed(out));
  } finally {
    raw.close();
    await net.close();
  }
});

Deno.test("SocketNet drops a peer announcing an oversized frame with one log line and serves the next", async () => {
  await withLog(async (lines) => {
    const net = SocketNet.open("listen:127.0.0.1:0");
    const got: Uint8Array[] = [];
    net.onFrame((f) => got.push(f));
    try {
      const good = await connect(net);
      const bad = await connect(net);
      await until(() => net.peerCount === 2, "two peers");
      const header = new Uint8Array(4);
      new DataView(header.buffer).setUint32(0, MAX_FRAME_BYTES + 1, false);
      await bad.write(header);
      await until(() => net.peerCount === 1, "the bad peer dropped");
      assertEquals(await bad.read(new Uint8Array(8)), null, "the bad peer's connection is closed");
      bad.close();
      assertEquals(lines.filter((l) => l.includes("dropped peer")).length, 1, lines.join("\n"));
      assert(lines.some((l) => l.includes(`${MAX_FRAME_BYTES + 1}-byte frame`)), lines.join("\n"));
      // The good peer is untouched, and a new one is served.
      await good.write(prefixed(eth(0xFF, 1, 1)));
      const next = await connect(net);
      await next.write(prefixed(eth(0xFF, 2, 2)));
      await until(() => got.length === 2, "frames from the good and the next peer");
      assertEquals(net.droppedPeers, 1);
      good.close();
      next.close();
    } finally {
      await net.close();
    }
  });
});

Deno.test("SocketNet drops a peer that stalls mid-frame and meanwhile serves the others", async () => {
  await withLog(async (lines) => {
    const net = SocketNet.open("listen:127.0.0.1:0", { stallMs: 200 });
    const got: number[] = [];
    net.onFrame((f) => got.push(f[20]));
    try {
      const staller = await connect(net);
      const good = await connect(net);
      await until(() => net.peerCount === 2, "two peers");
      // Half a frame, then silence.
      await staller.write(prefixed(eth(0xFF, 1, 7)).subarray(0, 30));
      await good.write(prefixed(eth(0xFF, 2, 8)));
      await until(() => got.length === 1, "the good peer's frame while the other stalls");
      await until(() => net.peerCount === 1, "the stalled peer dropped");
      assertEquals(lines.filter((l) => l.includes("dropped peer")).length, 1, lines.join("\n"));
      assert(lines.some((l) => l.includes("middle of a frame")), lines.join("\n"));
      await good.write(prefixed(eth(0xFF, 2, 9)));
      await until(() => got.length === 2, "the good peer still served");
      assertEquals(got, [8, 9]);
      staller.close();
      good.close();
    } finally {
      await net.close();
    }
  });
});

Deno.test("SocketNet: a connection that never speaks blocks nobody and yields its place when ports are full", async () => {
  await withLog(async () => {
    const net = SocketNet.open("listen:127.0.0.1:0", { maxPeers: 2 });
    const got: number[] = [];
    net.onFrame((f) => got.push(f[20]));
    try {
      const mute = await connect(net);
      const real = await connect(net);
      await until(() => net.peerCount === 2, "two peers");
      await real.write(prefixed(eth(0xFF, 2, 5)));
      await until(() => got.length === 1, "the real peer's frame");
      const toReal = eth(2, 9, 6);
      net.send(toReal);
      assertEquals(await readFrame(real), toReal);
      // Ports full: the newcomer takes the mute peer's place, not the real peer's.
      const third = await connect(net);
      await until(() => net.droppedPeers === 1, "the mute peer evicted");
      // It got the real peer's broadcast, then its connection was closed.
      assertEquals(await readFrame(mute), eth(0xFF, 2, 5));
      assertEquals(await mute.read(new Uint8Array(8)), null);
      await third.write(prefixed(eth(0xFF, 3, 7)));
      await until(() => got.length === 2, "the newcomer's frame");
      assertEquals(net.peerCount, 2);
      mute.close();
      real.close();
      third.close();
    } finally {
      await net.close();
    }
  });
});

Deno.test("SocketNet listen switches frames between peers and the Guest as one Ethernet segment", async () => {
  const net = SocketNet.open("listen:127.0.0.1:0");
  const toGuest: Uint8Array[] = [];
  net.onFrame((f) => toGuest.push(f));
  const [a, b, c] = [await connect(net), await connect(net), await connect(net)];
  try {
    await until(() => net.peerCount === 3, "three peers");
    // Broadcasts from each peer reach the Guest and the two other peers; the switch learns them.
    const peers = [a, b, c];
    for (const [i, p] of peers.entries()) {
      const f = eth(0xFF, i + 1, i + 1);
      await p.write(prefixed(f));
      for (const [j, q] of peers.entries()) if (j !== i) assertEquals(await readFrame(q), f);
    }
    await until(() => toGuest.length === 3, "three broadcasts at the Guest");
    // The Guest's broadcast reaches all three; then peers know it as MAC 9.
    const hello = eth(0xFF, 9, 0x99);
    net.send(hello);
    for (const p of peers) assertEquals(await readFrame(p), hello);
    // Unicast goes only to the owner: B → A, Guest → C, A → Guest.
    const bToA = eth(1, 2, 0x21);
    await b.write(prefixed(bToA));
    assertEquals(await readFrame(a), bToA);
    const gToC = eth(3, 9, 0x93);
    net.send(gToC);
    assertEquals(await readFrame(c), gToC);
    const aToG = eth(9, 1, 0x19);
    await a.write(prefixed(aToG));
    await until(() => toGuest.length === 4, "unicast at the Guest");
    assertEquals(toGuest[3], aToG);
    assert(await silent(b, 100), "B saw no unicast meant for others");
    assert(await silent(c, 1), "C saw only its own unicast");
    const d = net.describe();
    assert(/3 peer\(s\)/.test(d) && /guest sent 2 frames, received 4/.test(d), d);
  } finally {
    for (const p of [a, b, c]) p.close();
    await net.close();
  }
});

Deno.test("SocketNet connect retries until the peer listens", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const net = SocketNet.open(`connect:127.0.0.1:${port}`, { retryMs: 10 });
  net.send(eth(0xFF, 1, 0)); // nobody there yet: dropped
  assertEquals(net.droppedFrames, 1);
  await new Promise((r) => setTimeout(r, 40));
  assert(!net.connected);
  const l = Deno.listen({ hostname: "127.0.0.1", port });
  try {
    const peer = await l.accept();
    await net.whenConnected();
    const f = eth(2, 1, 9);
    net.send(f);
    assertEquals(await readFrame(peer), f);
    assert(/connected to 127\.0\.0\.1/.test(net.describe()), net.describe());
    peer.close();
  } finally {
    l.close();
    await net.close();
  }
});

Deno.test("SocketNet listen serves the next peer after one disconnects", async () => {
  const net = SocketNet.open("listen:127.0.0.1:0");
  const got: number[] = [];
  net.onFrame((f) => got.push(f[20]));
  try {
    const first = await connect(net);
    await first.write(prefixed(eth(0xFF, 1, 1)));
    await until(() => got.length === 1, "frame from the first peer");
    first.close();
    await until(() => !net.connected, "disconnect");
    const second = await connect(net);
    await second.write(prefixed(eth(0xFF, 1, 2)));
    await until(() => got.length === 2, "frame from the second peer");
    assertEquals(got, [1, 2]);
    second.close();
  } finally {
    await net.close();
  }
});
