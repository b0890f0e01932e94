/**
 * `--deterministic` makes a run a pure function of its inputs (issue #10): the same Guest booted
 * twice prints the same console output byte for byte (kernel timestamps, the RTC's date, entropy
 * from virtio-rng, a disk's and a shared folder's contents read back) and retires the same number
 * of instructions to power-off. The boots run at the same time, so host timing differs between
 * them on purpose. A third boot with --no-jit (the pure interpreter) must match too: the translator
 * changes nothing a guest can see, not even which instruction a timer interrupt lands on. The
 * Guest's input stays open until it has powered off: the console turns stdin's end of file into a
 * ^D for the Guest, typed at a moment the host decides (that once made two boots differ by a few
 * hundred instructions).
 */
import { assert, assertEquals } from "../assert.ts";
import { guest, skipReason } from "../tools/guest_fixture.ts";
import { withGuest } from "./guest_process.ts";

const ignore = guest === undefined;
if (ignore) console.warn(`deterministic boot tests skipped: ${skipReason}`);

/** Generous: three boots share the host, which may be loaded (no timing is asserted). */
const BOOT_TIMEOUT_MS = 2_400_000;
/** debian_boot_test.ts's fast kernel arguments (not imported: that would register its tests here). */
const FAST_ARGS = ["console=ttyS0", "cryptomgr.notests=1", "noisapnp"];

/** What the Guest runs: everything in it would differ between runs if host time or entropy leaked in. */
const COMMAND = [
  "date -u",
  "cat /proc/uptime",
  "head -c 64 /dev/hwrng | md5sum",
  "head -c 64 /dev/urandom | md5sum",
  "dd if=/dev/vda bs=4096 count=64 2>/dev/null | md5sum",
  "echo written | dd of=/dev/vda bs=512 seek=8 conv=fsync 2>/dev/null",
  "dd if=/dev/vda bs=512 skip=8 count=1 2>/dev/null | head -c 7",
  "mkdir -p /mnt/s && mount -t 9p -o trans=virtio share /mnt/s",
  "md5sum /mnt/s/data",
  "echo shared > /mnt/s/out && cat /mnt/s/out",
].join("; ");

/** Boots once with `extra` launcher options; returns the console output and the instruction count. */
export async function deterministicBoot(extra: string[]): Promise<{ output: string; instructions: number }> {
  const g = guest!;
  const disk = await Deno.makeTempFile({ prefix: "lguest-det-", suffix: ".img" });
  const share = await Deno.makeTempDir({ prefix: "lguest-det-share-" });
  try {
    const bytes = new Uint8Array(1 << 20);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 9)) & 0xFF;
    await Deno.writeFile(disk, bytes);
    await Deno.writeFile(`${share}/data`, bytes.subarray(0, 300_000));
    const args = [
      "--verbose",
      "--rng",
      `--block=${disk}`,
      `--share=${share}`,
      ...extra,
      `--initrd=${g.initrd}`,
      "256",
      g.vmlinux ?? g.kernel,
      ...FAST_ARGS,
      `lguest_run="${COMMAND}"`,
    ];
    return await withGuest(args, async (vm) => {
      await vm.waitFor(/LGUEST-TS-EXIT 0/, BOOT_TIMEOUT_MS);
      // The Guest powers off by itself: closing its input first would type ^D into it at a
      // host-timed moment (the very nondeterminism this test looks for).
      const code = await vm.exit(120_000, { keepInput: true });
      assertEquals(code, 0, `exit code ${code}; stderr: ${vm.stderr}`);
      const m = /guest ran (\d+) instructions/.exec(vm.stderr);
      assert(m !== null, vm.stderr);
      return { output: vm.output, instructions: Number(m[1]) };
    });
  } finally {
    await Deno.remove(disk).catch(() => {});
    await Deno.remove(share, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name:
    "--deterministic boots to the same console output and instruction count twice, and without the translator",
  ignore,
  sanitizeResources: false,
  async fn() {
    const [a, b, c] = await Promise.all([
      deterministicBoot([]),
      deterministicBoot([]),
      deterministicBoot(["--no-jit"]),
    ]);
    // The fixed start date, and a disk read back after a write through the tracked I/O path.
    assert(a.output.includes("2026"), a.output.slice(-2000));
    assert(a.output.includes("written"), a.output.slice(-2000));
    // A host file read and written through the tracked 9P path.
    assert(a.output.includes("/mnt/s/data"), a.output.slice(-2000));
    assert(a.output.includes("shared"), a.output.slice(-2000));
    assertEquals(a.output, b.output);
    assertEquals(a.instructions, b.instructions);
    assertEquals(c.output, a.output);
    assertEquals(c.instructions, a.instructions);
  },
});
