/**
 * virtio-blk end to end: the real Debian Guest (tools/fetch_guest.ts) reads and writes disk images the
 * test makes on the host, through `--block=FILE[,ro]` → /dev/vda. Checks go both ways: the Guest's
 * busybox sha256sum against the host's Web Crypto SHA-256, and the host's file after power-off.
 */
import { assert, assertEquals } from "../assert.ts";
import { guest, skipReason } from "../tools/guest_fixture.ts";
import { type GuestProcess, withGuest } from "./guest_process.ts";

const ignore = guest === undefined;
if (ignore) console.warn(`virtio-blk boot tests skipped: ${skipReason}`);

/** As in debian_boot_test.ts (importing it would register its tests here too). */
const FAST_ARGS = ["console=ttyS0", "cryptomgr.notests=1", "noisapnp"];
const BOOT_TIMEOUT_MS = 600_000;
const MiB = 1024 * 1024;

function assertMatch(text: string, pattern: RegExp): void {
  assert(pattern.test(text), `expected ${pattern} in: ${text}`);
}

/**
 * Boots the Guest with `blocks` (each `FILE` or `FILE,ro`), waits for its shell prompt and runs `fn`.
 * As in withGuest, the Guest is killed if the boot or `fn` fails.
 */
function withDisks(blocks: string[], fn: (vm: GuestProcess) => Promise<void>): Promise<void> {
  const g = guest!;
  const args = [
    ...blocks.map((b) => `--block=${b}`),
    `--initrd=${g.initrd}`,
    "256",
    g.vmlinux ?? g.kernel,
    ...FAST_ARGS,
  ];
  return withGuest(args, async (vm) => {
    await vm.waitFor(/\/ # /, BOOT_TIMEOUT_MS);
    await fn(vm);
  });
}

async function sha256(data: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The hash `sha256sum FILE` printed in the Guest's output. */
function guestHash(output: string): string {
  const m = output.match(/\b([0-9a-f]{64})\s/);
  assert(m, `no sha256sum in: ${output}`);
  return m[1];
}

async function tempImage(data: Uint8Array): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "lguest-vblk-", suffix: ".img" });
  await Deno.writeFile(path, data);
  return path;
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

Deno.test({
  name: "the Guest reads a host-written disk image through virtio-blk: same size and SHA-256",
  ignore,
  sanitizeResources: false,
  async fn() {
    const data = randomBytes(MiB);
    const path = await tempImage(data);
    try {
      await withDisks([path], async (vm) => {
        assertEquals((await vm.run("cat /sys/block/vda/size")).trim(), String(MiB / 512));
        assertEquals((await vm.run("cat /sys/block/vda/ro")).trim(), "0");
        assertEquals(guestHash(await vm.run("sha256sum /dev/vda")), await sha256(data));
        // Through dd with an odd block size too (several requests, partial last block).
        const viaDd = await vm.run("dd if=/dev/vda bs=12345 2>/dev/null | sha256sum");
        assertEquals(guestHash(viaDd), await sha256(data));
        await vm.powerOff();
      });
    } finally {
      await Deno.remove(path);
    }
  },
});

Deno.test({
  name: "a pattern the Guest writes with dd conv=fsync is exactly in the host file after power-off",
  ignore,
  sanitizeResources: false,
  async fn() {
    const before = randomBytes(MiB);
    const path = await tempImage(before);
    try {
      await withDisks([path], async (vm) => {
        // 40000 bytes of "lguest-block-pattern-N\n" lines (N from 1) at byte 65536 (sector 128), then a sync.
        const out = await vm.run(
          "seq 1 6000 | sed 's/^/lguest-block-pattern-/' | head -c 40000 > /tmp/p;" +
            " dd if=/tmp/p of=/dev/vda bs=512 seek=128 conv=fsync,notrunc; echo dd=$?; sync",
        );
        assertMatch(out, /dd=0/);
        await vm.powerOff();
      });
      let pattern = "";
      for (let i = 1; pattern.length < 40000; i++) pattern += `lguest-block-pattern-${i}\n`;
      const expected = before.slice();
      expected.set(new TextEncoder().encode(pattern.slice(0, 40000)), 65536);
      const after = await Deno.readFile(path);
      assertEquals(after.length, MiB);
      assertEquals(await sha256(after), await sha256(expected));
    } finally {
      await Deno.remove(path);
    }
  },
});

Deno.test({
  name: "--block=FILE,ro: /dev/vda is read-only in the Guest, its writes fail and the file is unchanged",
  ignore,
  sanitizeResources: false,
  async fn() {
    const data = randomBytes(MiB);
    const path = await tempImage(data);
    const hashBefore = await sha256(data);
    try {
      await withDisks([`${path},ro`], async (vm) => {
        assertEquals((await vm.run("cat /sys/block/vda/ro")).trim(), "1");
        const dd = await vm.run("dd if=/dev/zero of=/dev/vda bs=4096 count=4 conv=fsync; echo dd=$?");
        assertMatch(dd, /Operation not permitted|Read-only file system|I\/O error/);
        assert(!/dd=0\b/.test(dd), dd);
        // Forcing the block layer's read-only flag off still leaves the device refusing writes.
        const forced = await vm.run(
          "blockdev --setrw /dev/vda; dd if=/dev/zero of=/dev/vda bs=4096 count=4 conv=fsync; echo dd=$?",
        );
        assert(!/dd=0\b/.test(forced) || /I\/O error/.test(forced), forced);
        assertEquals(guestHash(await vm.run("sha256sum /dev/vda")), hashBefore);
        await vm.powerOff();
      });
      assertEquals(await sha256(await Deno.readFile(path)), hashBefore);
    } finally {
      await Deno.remove(path);
    }
  },
});

/** Whether the host can make ext2 images (e2fsprogs; .ci/run installs it). */
async function haveMke2fs(): Promise<boolean> {
  try {
    return (await new Deno.Command("mke2fs", { args: ["-V"], stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}
const noMke2fs = !ignore && !await haveMke2fs();
if (noMke2fs) console.warn("ext2 boot test skipped: mke2fs not found (apt-get install e2fsprogs)");

Deno.test({
  name: "a file written to an ext2 filesystem on /dev/vda survives power-off and a second boot",
  ignore: ignore || noMke2fs,
  sanitizeResources: false,
  async fn() {
    const path = await Deno.makeTempFile({ prefix: "lguest-ext2-", suffix: ".img" });
    try {
      const mkfs = await new Deno.Command("mke2fs", {
        args: ["-q", "-F", "-t", "ext2", path, "8M"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert(mkfs.success, new TextDecoder().decode(mkfs.stderr));

      await withDisks([path], async (first) => {
        const out = await first.run(
          "mount -t ext2 /dev/vda /mnt && echo persisted-$((6*7)) > /mnt/hello.txt &&" +
            " mkdir /mnt/dir && seq 1 5000 > /mnt/dir/numbers && umount /mnt; echo rc=$?",
        );
        assertMatch(out, /rc=0/);
        await first.powerOff();
      });

      // The host's fsck finds a clean filesystem: the Guest unmounted it and every write arrived.
      const fsck = await new Deno.Command("e2fsck", { args: ["-fn", path], stdout: "piped", stderr: "piped" })
        .output().catch(() => undefined);
      if (fsck) assertEquals(fsck.code, 0, new TextDecoder().decode(fsck.stdout));

      await withDisks([path], async (second) => {
        assertMatch(await second.run("mount -t ext2 /dev/vda /mnt; echo rc=$?"), /rc=0/);
        assertEquals((await second.run("cat /mnt/hello.txt")).trim(), "persisted-42");
        const numbers = await second.run("wc -l < /mnt/dir/numbers; tail -n 1 /mnt/dir/numbers");
        assertEquals(numbers.trim().split(/\s+/), ["5000", "5000"]);
        assertMatch(await second.run("umount /mnt; echo rc=$?"), /rc=0/);
        await second.powerOff();
      });
    } finally {
      await Deno.remove(path);
    }
  },
});
