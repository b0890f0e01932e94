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

Deno.test("FileDisk refuses an empty or sub-sector file and warns about a partial last sector", async () => {
  for (const size of [0, 511]) {
    const path = await tempFile(new Uint8Array(size));
    try {
      await assertRejects(() => FileDisk.open(path), (e: unknown) => {
        assert(e instanceof LaunchError);
        assertEquals(
          e.message,
          `Cannot use block file "${path}": it is ${size} bytes, less than one 512-byte sector`,
        );
        return true;
      });
    } finally {
      await Deno.remove(path);
    }
  }
  const path = await tempFile(new Uint8Array(1000));
  const disk = await FileDisk.open(path);
  try {
    assertEquals(
      disk.sizeWarning,
      `block file "${path}" is 1000 bytes, not a multiple of 512: the guest sees 1 sectors and never the last 488 bytes`,
    );
  } finally {
    await disk.close();
    await Deno.remove(path);
  }
  const whole = await tempFile(new Uint8Array(1024));
  const ok = await FileDisk.open(whole);
  assertEquals(ok.sizeWarning, undefined);
  await ok.close();
  await Deno.remove(whole);
});

Deno.test("FileDisk refuses a file it may not write with a hint to add ,ro", async () => {
  const path = await tempFile(new Uint8Array(1024));
  try {
    // Deno's permissions deny the write whoever runs the test (a chmod would not stop root).
    const script = `import { FileDisk } from ${
      JSON.stringify(new URL("../../lib/backends/file_disk.ts", import.meta.url).href)
    };
      try { await FileDisk.open(${JSON.stringify(path)}); } catch (e) { console.log(e.message); }
      const d = await FileDisk.open(${
      JSON.stringify(path)
    }, { readOnly: true }); console.log("ro", d.sizeBytes);`;
    // `deno eval` always has every permission: run a script file instead.
    const scriptPath = await Deno.makeTempFile({ suffix: ".ts" });
    await Deno.writeTextFile(scriptPath, script);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        `--allow-read=${path},${scriptPath},${new URL("../../", import.meta.url).pathname}`,
        scriptPath,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
    assert(lines[0].startsWith(`Cannot open block file "${path}": `), lines.join("\n"));
    assert(lines[0].endsWith(`(to use it read-only, add ",ro": --block=${path},ro)`), lines[0]);
    assertEquals(lines[1], "ro 1024");
    await Deno.remove(scriptPath);
    if (Deno.uid() !== 0) {
      await Deno.chmod(path, 0o444);
      await assertRejects(() => FileDisk.open(path), (e: unknown) => {
        assert(e instanceof LaunchError);
        assertEquals(
          e.message,
          `Cannot open block file "${path}": permission denied (to use it read-only, add ",ro": --block=${path},ro)`,
        );
        return true;
      });
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("FileDisk locks an image: one writer, or readers that share it, within one launcher and across two", async () => {
  const path = await tempFile(new Uint8Array(1024));
  try {
    const writer = await FileDisk.open(path);
    await assertRejects(() => FileDisk.open(path), /already open elsewhere/);
    await assertRejects(() => FileDisk.open(path, { readOnly: true }), /open read-write elsewhere/);
    // Another process: the same lock.
    const script = `import { FileDisk } from ${
      JSON.stringify(new URL("../../lib/backends/file_disk.ts", import.meta.url).href)
    };
      for (const readOnly of [false, true]) {
        try { await (await FileDisk.open(${
      JSON.stringify(path)
    }, { readOnly })).close(); console.log("opened"); }
        catch (e) { console.log(e.message); }
      }`;
    const other = async () =>
      new TextDecoder().decode(
        (await new Deno.Command(Deno.execPath(), { args: ["eval", "-A", script], stdout: "piped" }).output())
          .stdout,
      ).trim().split("\n");
    const busy = await other();
    assert(
      busy[0].includes("already open elsewhere") && busy[1].includes("open read-write elsewhere"),
      busy.join("\n"),
    );
    await writer.close();
    const r1 = await FileDisk.open(path, { readOnly: true });
    const r2 = await FileDisk.open(path, { readOnly: true });
    await assertRejects(() => FileDisk.open(path), /already open elsewhere/);
    assertEquals((await other())[0].includes("already open elsewhere"), true);
    await r1.close();
    await r2.close();
    assertEquals(await other(), ["opened", "opened"]);
  } finally {
    await Deno.remove(path);
  }
});
