/**
 * Tests for FileDisk: launch errors in Deno's grammar, capacity rounded down to whole sectors,
 * reads and writes at offsets, serialized concurrent operations, and read-only files that no
 * call can modify.
 */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { FileDisk } from "../../lib/backends/file_disk.ts";
import { LaunchError } from "../../lib/support/errors.ts";

async function tempFile(bytes: Uint8Array): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".img" });
  await Deno.writeFile(path, bytes);
  return path;
}

Deno.test("FileDisk open of a missing file is a one-line LaunchError", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertRejects(() => FileDisk.open(`${dir}/nope.img`), (e: unknown) => {
      assert(e instanceof LaunchError);
      assertEquals(e.message, `Cannot open block file "${dir}/nope.img": no such file`);
      return true;
    });
    await assertRejects(() => FileDisk.open(dir, { readOnly: true }), (e: unknown) => {
      assert(e instanceof LaunchError);
      assertEquals(e.message, `Cannot open block file "${dir}": is a directory`);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("FileDisk capacity is the file size rounded down to 512 bytes", async () => {
  const path = await tempFile(new Uint8Array(512 * 3 + 100).fill(7));
  const disk = await FileDisk.open(path);
  try {
    assertEquals(disk.sizeBytes, 1536);
    await assertRejects(() => disk.read(1536, new Uint8Array(1)));
    await assertRejects(() => disk.write(1024, new Uint8Array(1024)));
    assertEquals((await Deno.readFile(path)).length, 1636, "the tail is never written");
  } finally {
    await disk.close();
    await Deno.remove(path);
  }
});

Deno.test("FileDisk reads, writes and flushes at byte offsets, one operation at a time", async () => {
  const path = await tempFile(new Uint8Array(4096));
  const disk = await FileDisk.open(path);
  try {
    // Issued together: seek + read pairs must not interleave.
    const ops: Promise<void>[] = [];
    for (let i = 0; i < 8; i++) ops.push(disk.write(512 * i, new Uint8Array(512).fill(i + 1)));
    const reads = [0, 1, 2].map(() => new Uint8Array(512));
    ops.push(
      disk.read(512 * 7, reads[0]),
      disk.read(512 * 3, reads[1]),
      disk.read(0, reads[2]),
      disk.flush(),
    );
    await Promise.all(ops);
    assertEquals(reads.map((r) => r.every((b) => b === r[0]) ? r[0] : -1), [8, 4, 1]);
    const file = await Deno.readFile(path);
    assertEquals(file[512 * 5 + 17], 6);
  } finally {
    await disk.close();
    await Deno.remove(path);
  }
});

Deno.test("FileDisk opened read-only refuses writes and leaves the file unchanged", async () => {
  const original = new Uint8Array(2048).map((_, i) => i & 0xFF);
  const path = await tempFile(original);
  const disk = await FileDisk.open(path, { readOnly: true });
  try {
    assert(disk.readOnly);
    await assertRejects(() => disk.write(0, new Uint8Array(512)));
    await disk.flush();
    const back = new Uint8Array(512);
    await disk.read(512, back);
    assertEquals(back, original.subarray(512, 1024));
    assertEquals(await Deno.readFile(path), original);
  } finally {
    await disk.close();
    await Deno.remove(path);
  }
});
