/** Tests for PcapTap: both directions of a backend land in a pcap file a reader accepts, in order. */
import { assert, assertEquals } from "../assert.ts";
import { PcapFile, PcapTap } from "../../lib/backends/pcap_tap.ts";
import { LaunchError } from "../../lib/support/errors.ts";
import { readPcap } from "../net/pcap_reader.ts";

class LoopBackend {
  receiver: (f: Uint8Array) => void = () => {};
  sent: Uint8Array[] = [];
  closed = false;
  send(f: Uint8Array) {
    this.sent.push(f);
  }
  onFrame(cb: (f: Uint8Array) => void) {
    this.receiver = cb;
  }
  describe() {
    return "loop";
  }
  close() {
    this.closed = true;
    return Promise.resolve();
  }
}

Deno.test("PcapTap captures sent and received frames in a pcap file, and passes them on", async () => {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    const inner = new LoopBackend();
    const tap = PcapTap.open(path, inner);
    const got: Uint8Array[] = [];
    tap.onFrame((f) => got.push(f));
    const a = new Uint8Array(60).fill(1);
    const b = new Uint8Array(1514).fill(2);
    tap.send(a);
    inner.receiver(b);
    // Enough frames to need more than one flush of the buffer.
    for (let i = 0; i < 300; i++) tap.send(new Uint8Array(1514).fill(i & 0xFF));
    await tap.close();
    assert(inner.closed);
    assertEquals(inner.sent[0], a);
    assertEquals(got, [b]);
    const pcap = readPcap(await Deno.readFile(path));
    assertEquals(pcap.linkType, 1);
    assertEquals(pcap.records.length, 302);
    assertEquals(pcap.records[0].data, a);
    assertEquals(pcap.records[1].data, b);
    assertEquals(pcap.records[301].data, new Uint8Array(1514).fill(299 & 0xFF));
    const now = Date.now() / 1000;
    assert(Math.abs(pcap.records[0].seconds - now) < 3600, "timestamps are wall-clock seconds");
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("PcapTap refuses a file it cannot create with a LaunchError naming it", () => {
  let err: unknown;
  try {
    PcapTap.open("/nonexistent-dir/x.pcap", new LoopBackend());
  } catch (e) {
    err = e;
  }
  assert(err instanceof LaunchError && err.message.includes('"/nonexistent-dir/x.pcap"'), String(err));
});

Deno.test("one PcapFile outlives the taps of successive boots: one capture holds every boot's frames", async () => {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    const file = PcapFile.open(path);
    for (let boot = 0; boot < 3; boot++) {
      const inner = new LoopBackend();
      const tap = new PcapTap(file, inner);
      tap.send(new Uint8Array(60).fill(boot));
      await tap.close(); // the boot ends: its backend closes, the file stays open
      assert(inner.closed);
    }
    file.close();
    const pcap = readPcap(await Deno.readFile(path));
    assertEquals(pcap.records.map((r) => r.data[0]), [0, 1, 2]);
  } finally {
    await Deno.remove(path);
  }
});
