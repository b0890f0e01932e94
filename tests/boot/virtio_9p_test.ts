/**
 * Host folders end to end (issue #12): the real Debian Guest mounts two `--share` folders with
 * `mount -t 9p -o trans=virtio TAG DIR` (one read-write, one `,ro`) and, in one boot: reads a host
 * file, writes files the host then sees, fails to reach a host folder beside the share (`..`, an
 * absolute symlink, a relative one that climbs out), and is refused every change on the `,ro` one.
 */
import { assert, assertEquals } from "../assert.ts";
import { guest, skipReason } from "../tools/guest_fixture.ts";
import { withGuest } from "./guest_process.ts";

const ignore = guest === undefined;
if (ignore) console.warn(`virtio-9p boot tests skipped: ${skipReason}`);

const FAST_ARGS = ["console=ttyS0", "cryptomgr.notests=1", "noisapnp"];
const BOOT_TIMEOUT_MS = 1_800_000; // generous: a loaded 2-core machine took 17 min to boot
/** Per command: a loaded machine runs the Guest 100 times slower than an idle one. */
const RUN_TIMEOUT_MS = 600_000;

Deno.test({
  name:
    "--share: the Guest mounts a host folder over virtio-9p, reads and writes it, cannot leave it, and ,ro refuses changes",
  ignore,
  sanitizeResources: false,
  async fn() {
    const base = await Deno.makeTempDir({ prefix: "lguest-9p-boot-" });
    const share = `${base}/share`;
    const roShare = `${base}/ro`;
    const outside = `${base}/outside`;
    for (const d of [share, roShare, outside]) await Deno.mkdir(d);
    const secret = `SECRET-${crypto.randomUUID()}`;
    await Deno.writeTextFile(`${outside}/secret.txt`, secret + "\n");
    await Deno.writeTextFile(`${share}/hello.txt`, "hello from the host\n");
    await Deno.symlink(outside, `${share}/abs_link`);
    await Deno.symlink("../outside/secret.txt", `${share}/rel_link`);
    await Deno.writeTextFile(`${roShare}/keep.txt`, "keep me\n");
    try {
      const g = guest!;
      const args = [
        `--share=${share}`,
        `--share=${roShare},tag=hostro,ro`,
        `--initrd=${g.initrd}`,
        "256",
        g.vmlinux ?? g.kernel,
        ...FAST_ARGS,
      ];
      await withGuest(args, async (vm) => {
        await vm.waitFor(/\/ # /, BOOT_TIMEOUT_MS);
        const mount = await vm.run(
          "mkdir -p /mnt/s /mnt/r && mount -t 9p -o trans=virtio share /mnt/s && " +
            "mount -t 9p -o trans=virtio hostro /mnt/r; echo mount=$?",
          RUN_TIMEOUT_MS,
        );
        assert(mount.includes("mount=0"), mount);
        assert((await vm.run("cat /mnt/s/hello.txt", RUN_TIMEOUT_MS)).includes("hello from the host"));
        // seq writes line by line: straight into the share that would be 20000 Twrites (cache=none);
        // cp writes big blocks.
        const write = await vm.run(
          "echo written-by-the-guest > /mnt/s/from_guest.txt && mkdir /mnt/s/gdir && " +
            "seq 1 20000 > /tmp/numbers && cp /tmp/numbers /mnt/s/gdir/numbers && mv /mnt/s/from_guest.txt /mnt/s/gdir/moved.txt; echo write=$?",
          RUN_TIMEOUT_MS,
        );
        assert(write.includes("write=0"), write);
        // Escapes: the Guest resolves ".." and symlinks in its own namespace, never the host's.
        const escapes = await vm.run(
          "cat /mnt/s/../outside/secret.txt /mnt/s/abs_link/secret.txt /mnt/s/rel_link 2>&1; ls /mnt/s/..; echo escapes-done",
          RUN_TIMEOUT_MS,
        );
        assert(escapes.includes("escapes-done"), escapes);
        assert(!escapes.includes(secret), `the Guest read a host file outside the share:\n${escapes}`);
        const ro = await vm.run(
          "cat /mnt/r/keep.txt; echo x > /mnt/r/new.txt; echo create=$?; rm /mnt/r/keep.txt; echo rm=$?; " +
            "mkdir /mnt/r/d; echo mkdir=$?; touch /mnt/r/keep.txt; echo touch=$?",
          RUN_TIMEOUT_MS,
        );
        assert(ro.includes("keep me"), ro);
        for (const op of ["create", "rm", "mkdir", "touch"]) assert(new RegExp(`${op}=[1-9]`).test(ro), ro);
        assert(/Read-only file system/.test(ro), ro);
        await vm.run("umount /mnt/s /mnt/r; sync", RUN_TIMEOUT_MS);
        await vm.powerOff(RUN_TIMEOUT_MS);
      });
      assertEquals(await Deno.readTextFile(`${share}/gdir/moved.txt`), "written-by-the-guest\n");
      const numbers = await Deno.readTextFile(`${share}/gdir/numbers`);
      assertEquals(numbers, Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join(""));
      assertEquals((await Array.fromAsync(Deno.readDir(roShare))).map((e) => e.name), ["keep.txt"]);
      assertEquals(await Deno.readTextFile(`${roShare}/keep.txt`), "keep me\n");
      assertEquals((await Array.fromAsync(Deno.readDir(outside))).map((e) => e.name), ["secret.txt"]);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});
