/**
 * Tests for SocketNet: the spec grammar, QEMU's 4-byte big-endian length framing checked from a
 * raw TCP peer (split reads, oversized frames skipped), connect mode retrying until the peer
 * listens, listen mode taking the next peer after a disconnect, and drops while disconnected.
 */
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { parseSocketNetSpec, SocketNet } from "../../lib/backends/socket_net.ts";
import { LaunchError } from "../../lib/support/errors.ts";
import { MAX_FRAME_BYTES } from "../../lib/virtio/net.ts";

function prefixed(frame: Uint8Array): Uint8Array {
  const p = new Uint8Array(4 + frame.length);
  new DataView(p.buffer).setUint32(0, frame.length, false);
  p.set(frame, 4);
  return p;
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

Deno.test("SocketNet frames are QEMU-compatible length-prefixed, split or not, oversized skipped", async () => {
  const net = SocketNet.open("listen:127.0.0.1:0");
  const got: Uint8Array[] = [];
  net.onFrame((f) => got.push(f));
  const raw = await Deno.connect({ hostname: "127.0.0.1", port: net.localPort });
  try {
    await net.whenConnected();
    const a = new Uint8Array(60).fill(0xAA);
    const big = new Uint8Array(MAX_FRAME_BYTES + 10).fill(0xBB);
    const c = new Uint8Array(1514).fill(0xCC);
    const stream = new Uint8Array([...prefixed(a), ...prefixed(big), ...prefixed(c)]);
    // Dribble the first bytes to split the length prefix itself.
    await raw.write(stream.subarray(0, 2));
    await new Promise((r) => setTimeout(r, 5));
    await raw.write(stream.subarray(2, 70));
    await raw.write(stream.subarray(70));
    await until(() => got.length === 2, "two frames");
    assertEquals(got, [a, c]);
    assertEquals(net.droppedFrames, 1);
    net.send(new Uint8Array([1, 2, 3]));
    assertEquals(await readExactly(raw, 7), new Uint8Array([0, 0, 0, 3, 1, 2, 3]));
  } finally {
    raw.close();
    await net.close();
  }
});

Deno.test("SocketNet connect retries until the peer listens", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const net = SocketNet.open(`connect:127.0.0.1:${port}`, { retryMs: 10 });
  net.send(new Uint8Array(10)); // nobody there yet: dropped
  assertEquals(net.droppedFrames, 1);
  await new Promise((r) => setTimeout(r, 40));
  assert(!net.connected);
  const l = Deno.listen({ hostname: "127.0.0.1", port });
  try {
    const peer = await l.accept();
    await net.whenConnected();
    net.send(new Uint8Array([9]));
    assertEquals(await readExactly(peer, 5), new Uint8Array([0, 0, 0, 1, 9]));
    peer.close();
  } finally {
    l.close();
    await net.close();
  }
});

Deno.test("SocketNet listen serves the next peer after one disconnects", async () => {
  const net = SocketNet.open("listen:127.0.0.1:0");
  const got: number[] = [];
  net.onFrame((f) => got.push(f[0]));
  try {
    const first = await Deno.connect({ hostname: "127.0.0.1", port: net.localPort });
    await first.write(prefixed(new Uint8Array([1])));
    await until(() => got.length === 1, "frame from the first peer");
    first.close();
    await until(() => !net.connected, "disconnect");
    const second = await Deno.connect({ hostname: "127.0.0.1", port: net.localPort });
    await second.write(prefixed(new Uint8Array([2])));
    await until(() => got.length === 2, "frame from the second peer");
    assertEquals(got, [1, 2]);
    second.close();
  } finally {
    await net.close();
  }
});
