/**
 * Tests for lib/launcher/cpio.ts: newc archives round-trip through our reader, match the format's
 * 4-byte alignment rules, and are read back by GNU cpio (the reference implementation) when installed.
 */

import { assert, assertEquals, assertThrows } from "../assert.ts";
import {
  CpioWriter,
  gunzip,
  gzip,
  parseCpio,
  S_IFCHR,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
} from "../../lib/launcher/cpio.ts";

const enc = new TextEncoder();

function sampleArchive(): Uint8Array {
  const w = new CpioWriter({ mtime: 1_700_000_000 });
  w.addDirectory("tmp", 0o1777);
  w.addFile("/bin/busybox", Uint8Array.from({ length: 1001 }, (_, i) => i & 0xFF), 0o755);
  w.addSymlink("bin/sh", "busybox");
  w.addCharDevice("dev/console", 5, 1);
  w.addFile("etc/a/b/c.txt", enc.encode("hello\n"));
  w.addFile("init", enc.encode("#!/bin/sh\n"), 0o755);
  return w.finish();
}

Deno.test("CpioWriter output round-trips through parseCpio with parents created first", () => {
  const entries = parseCpio(sampleArchive());
  assertEquals(entries.map((e) => e.name), [
    "tmp",
    "bin",
    "bin/busybox",
    "bin/sh",
    "dev",
    "dev/console",
    "etc",
    "etc/a",
    "etc/a/b",
    "etc/a/b/c.txt",
    "init",
  ]);
  const byName = new Map(entries.map((e) => [e.name, e]));
  assertEquals(byName.get("tmp")!.mode, S_IFDIR | 0o1777);
  assertEquals(byName.get("bin")!.mode, S_IFDIR | 0o755);
  assertEquals(byName.get("bin/busybox")!.mode, S_IFREG | 0o755);
  assertEquals(byName.get("bin/busybox")!.data, Uint8Array.from({ length: 1001 }, (_, i) => i & 0xFF));
  assertEquals(byName.get("bin/sh")!.mode & S_IFMT, S_IFLNK);
  assertEquals(new TextDecoder().decode(byName.get("bin/sh")!.data), "busybox");
  const consoleNode = byName.get("dev/console")!;
  assertEquals([consoleNode.mode, consoleNode.rdevMajor, consoleNode.rdevMinor], [S_IFCHR | 0o600, 5, 1]);
  assertEquals(byName.get("init")!.mtime, 1_700_000_000);
  assert(entries.every((e) => e.uid === 0 && e.gid === 0), "owned by root");
  assertEquals(new Set(entries.map((e) => e.ino)).size, entries.length);
});

Deno.test("CpioWriter aligns every header and data block to 4 bytes and ends with TRAILER!!!", () => {
  const archive = sampleArchive();
  assertEquals(archive.length % 4, 0);
  const text = new TextDecoder("latin1").decode(archive);
  for (let at = text.indexOf("070701"); at !== -1; at = text.indexOf("070701", at + 1)) {
    if (/^070701[0-9A-F]{104}/.test(text.slice(at, at + 110))) assertEquals(at % 4, 0, `header at ${at}`);
  }
  assert(text.includes("TRAILER!!!\0"), "trailer");
});

Deno.test("CpioWriter refuses bad or duplicate names and use after finish", () => {
  const w = new CpioWriter();
  w.addFile("a", new Uint8Array(1));
  assertThrows(() => w.addFile("a", new Uint8Array(1)), /added twice/);
  assertThrows(() => w.addFile("../etc/passwd", new Uint8Array(1)), /invalid cpio member name/);
  assertThrows(() => w.addFile("/", new Uint8Array(1)), /invalid cpio member name/);
  w.addDirectory("d");
  w.addDirectory("d"); // directories are idempotent
  w.finish();
  assertThrows(() => w.addFile("b", new Uint8Array(1)), /after finish/);
});

Deno.test("parseCpio rejects truncated archives and other formats", () => {
  const archive = sampleArchive();
  assertThrows(() => parseCpio(archive.subarray(0, archive.length - 8)), /truncated/);
  assertThrows(() => parseCpio(archive.subarray(0, 200)), /truncated/);
  const odc = archive.slice();
  odc.set(enc.encode("070707"), 0);
  assertThrows(() => parseCpio(odc), /bad magic "070707"/);
});

Deno.test("gzip output has the gzip magic and gunzip restores it", async () => {
  const archive = sampleArchive();
  const gz = await gzip(archive);
  assertEquals([gz[0], gz[1]], [0x1F, 0x8B]);
  assertEquals(await gunzip(gz), archive);
});

const hasCpio = await new Deno.Command("sh", { args: ["-c", "command -v cpio"], stdout: "null" }).output()
  .then((o) => o.success, () => false);
if (!hasCpio) console.warn("GNU cpio cross-check ignored: cpio is not installed (apt-get install cpio)");

Deno.test({
  name: "CpioWriter archives are listed and extracted identically by GNU cpio",
  ignore: !hasCpio,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeFile(`${dir}/a.cpio`, sampleArchive());
      const list = await new Deno.Command("sh", {
        args: ["-c", `cpio -it --quiet < ${dir}/a.cpio`],
        stdout: "piped",
      })
        .output();
      assert(list.success, "cpio -it");
      assertEquals(
        new TextDecoder().decode(list.stdout).trim().split("\n"),
        parseCpio(sampleArchive()).map((e) => e.name),
      );
      // Extract without device nodes (mknod may be refused in a sandbox) and compare contents.
      const out = `${dir}/x`;
      await Deno.mkdir(out);
      const x = await new Deno.Command("sh", {
        args: ["-c", `cd ${out} && cpio -idm --quiet --no-absolute-filenames -f 'dev/console' < ../a.cpio`],
      }).output();
      assert(x.success, new TextDecoder().decode(x.stderr));
      assertEquals(
        await Deno.readFile(`${out}/bin/busybox`),
        Uint8Array.from({ length: 1001 }, (_, i) => i & 0xFF),
      );
      assertEquals(await Deno.readLink(`${out}/bin/sh`), "busybox");
      assertEquals(await Deno.readTextFile(`${out}/etc/a/b/c.txt`), "hello\n");
      assertEquals((await Deno.stat(`${out}/init`)).mode! & 0o777, 0o755);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
