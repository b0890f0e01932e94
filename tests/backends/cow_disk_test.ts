/**
 * Tests for CowDisk (lib/backends/cow_disk.ts): reads from the overlay where written, else from
 * the base; the base is never modified (snapshot and overlay); an overlay reopened keeps what a
 * flush covered; commit and discard; a wrong or foreign overlay is refused; and crash safety with
 * real SIGKILLs of a writing process, many times, checked after each.
 */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { commitOverlay, CowDisk, discardOverlay } from "../../lib/backends/cow_disk.ts";
import { LaunchError } from "../../lib/support/errors.ts";

const SECTORS = 256;

async function fixture() {
  const dir = await Deno.makeTempDir({ prefix: "lguest-cow-" });
  const base = `${dir}/base.img`;
  const data = new Uint8Array(SECTORS * 512).map((_, i) => (i * 31 + 7) & 0xFF);
  await Deno.writeFile(base, data);
  return { dir, base, overlay: `${dir}/base.ovl`, data, close: () => Deno.remove(dir, { recursive: true }) };
}

const sector = (v: number) => new Uint8Array(512).fill(v);

Deno.test("CowDisk snapshot: the guest sees its writes, the base is never modified and nothing is left behind", async () => {
  const f = await fixture();
  try {
    const before = new Set(Array.from(Deno.readDirSync(Deno.env.get("TMPDIR") ?? "/tmp"), (e) => e.name));
    const disk = await CowDisk.open(f.base);
    await disk.write(512 * 3, new Uint8Array(1024).fill(0xAB));
    const back = new Uint8Array(512 * 4);
    await disk.read(512 * 2, back);
    assertEquals(back.subarray(0, 512), f.data.subarray(1024, 1536));
    assert(back.subarray(512, 1536).every((b) => b === 0xAB));
    assertEquals(back.subarray(1536), f.data.subarray(2560, 3072));
    await disk.flush();
    await disk.close();
    assertEquals(await Deno.readFile(f.base), f.data);
    const after = Array.from(Deno.readDirSync(Deno.env.get("TMPDIR") ?? "/tmp"), (e) => e.name);
    assertEquals(after.filter((n) => n.startsWith("lguest-snapshot-") && !before.has(n)), []);
  } finally {
    await f.close();
  }
});

Deno.test("CowDisk overlay persists flushed writes across a reopen, leaves the base alone, and commit/discard work", async () => {
  const f = await fixture();
  try {
    const a = await CowDisk.open(f.base, { overlayPath: f.overlay });
    await a.write(0, sector(1));
    await a.write(512 * 100, new Uint8Array(512 * 3).fill(2));
    await a.flush();
    await a.close();
    assertEquals(await Deno.readFile(f.base), f.data);
    const b = await CowDisk.open(f.base, { overlayPath: f.overlay });
    assertEquals(b.allocatedSectors, 4);
    const buf = new Uint8Array(512 * 4);
    await b.read(512 * 99, buf);
    assertEquals(buf.subarray(0, 512), f.data.subarray(512 * 99, 512 * 100));
    assert(buf.subarray(512).every((x) => x === 2));
    // Locked while open: a second launcher, or commit, is refused.
    await assertRejects(() => CowDisk.open(f.base, { overlayPath: f.overlay }), /in use/);
    await assertRejects(() => commitOverlay(f.overlay), /in use/);
    await b.close();
    assertEquals(await commitOverlay(f.overlay), 4);
    const expected = f.data.slice();
    expected.set(sector(1), 0);
    expected.set(new Uint8Array(512 * 3).fill(2), 512 * 100);
    assertEquals(await Deno.readFile(f.base), expected);
    const c = await CowDisk.open(f.base, { overlayPath: f.overlay });
    assertEquals(c.allocatedSectors, 0);
    await c.write(512, sector(9));
    await c.close();
    await discardOverlay(f.overlay);
    const d = await CowDisk.open(f.base, { overlayPath: f.overlay });
    assertEquals(d.allocatedSectors, 0);
    await d.close();
    assertEquals(await Deno.readFile(f.base), expected);
  } finally {
    await f.close();
  }
});

Deno.test("CowDisk refuses an overlay made for another base size, or a file that is no overlay", async () => {
  const f = await fixture();
  try {
    await (await CowDisk.open(f.base, { overlayPath: f.overlay })).close();
    await Deno.writeFile(f.base, new Uint8Array(SECTORS * 512 + 512));
    await assertRejects(() => CowDisk.open(f.base, { overlayPath: f.overlay }), (e: unknown) => {
      assert(e instanceof LaunchError);
      assert(
        e.message.startsWith(`Cannot use overlay file "${f.overlay}": it was made for a base of`),
        e.message,
      );
      return true;
    });
    await Deno.writeTextFile(f.overlay, "not an overlay at all".repeat(300));
    await assertRejects(() => CowDisk.open(f.base, { overlayPath: f.overlay }), /bad magic/);
  } finally {
    await f.close();
  }
});

Deno.test("CowDisk overlay after SIGKILL at random moments, 12 times: base untouched, every flushed write kept", async () => {
  const f = await fixture();
  const child = new URL("./cow_disk_crash_child.ts", import.meta.url).pathname;
  try {
    // What each sector must hold: the last flushed round that wrote it (or the base).
    const flushed = new Map<number, number>();
    let next = 0;
    let seed = 12345;
    for (let kill = 0; kill < 12; kill++) {
      const p = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", child, f.base, f.overlay, String(next)],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const reader = p.stdout.getReader();
      let text = "";
      let lastFlushed = -1;
      seed = (seed * 1103515245 + 12345) >>> 0;
      const wanted = 1 + (seed % 6); // kill after a few confirmed flushes, mid-round
      while (lastFlushed < next + 5 * wanted - 1) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
        const all = [...text.matchAll(/flushed (\d+)\n/g)];
        if (all.length > 0) lastFlushed = Number(all[all.length - 1][1]);
      }
      await new Promise((r) => setTimeout(r, seed % 7));
      p.kill("SIGKILL");
      await p.status;
      // Flushes reported after our last read may exist too; only those we saw are promised.
      reader.releaseLock();
      await p.stdout.cancel().catch(() => {});
      for (let r = next; r <= lastFlushed; r++) flushed.set((r * 7919) % SECTORS, r);
      // Rounds after lastFlushed may or may not be there; start the next process past them all.
      next = lastFlushed + 1000;
      assertEquals(await Deno.readFile(f.base), f.data, "the base is never written");
      const disk = await CowDisk.open(f.base, { overlayPath: f.overlay });
      try {
        for (const [s, r] of flushed) {
          const buf = new Uint8Array(512);
          await disk.read(s * 512, buf);
          const got = new TextDecoder().decode(buf.subarray(0, 20)).split(" ");
          assertEquals(got[0], "round", `sector ${s} lost flushed round ${r} (kill ${kill})`);
          assert(Number(got[1]) >= r, `sector ${s} holds round ${got[1]}, older than flushed ${r}`);
        }
      } finally {
        await disk.close();
      }
      // The reopen-and-close above flushed nothing new (no writes); the next child appends.
    }
    assert(flushed.size > 10);
  } finally {
    await f.close();
  }
});
