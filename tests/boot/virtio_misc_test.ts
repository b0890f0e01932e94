/**
 * virtio-rng and virtio-console end to end with the real Debian Guest (tools/fetch_guest.ts): the
 * Guest's /dev/hwrng gives fresh bytes from `--rng`, and a shell on hvc0 (the last console=, so the
 * launcher routes keyboard input to virtio-console) answers commands.
 */
import { assert, assertEquals } from "../assert.ts";
import { guest, skipReason } from "../tools/guest_fixture.ts";
import { type GuestProcess, withGuest } from "./guest_process.ts";

const ignore = guest === undefined;
if (ignore) console.warn(`virtio rng/console boot tests skipped: ${skipReason}`);

const BOOT_TIMEOUT_MS = 600_000;
/** As in debian_boot_test.ts, less console=ttyS0 (each test picks its console). */
const FAST_ARGS = ["cryptomgr.notests=1", "noisapnp"];

/**
 * Boots the Guest with `launcherArgs` and `kernelArgs`, waits for its shell prompt and runs `fn`. As
 * in withGuest, the Guest is killed if the boot or `fn` fails.
 */
function withShell(
  launcherArgs: string[],
  kernelArgs: string[],
  fn: (vm: GuestProcess) => Promise<void>,
): Promise<void> {
  const g = guest!;
  const args = [...launcherArgs, `--initrd=${g.initrd}`, "256", g.vmlinux ?? g.kernel, ...kernelArgs];
  return withGuest(args, async (vm) => {
    await vm.waitFor(/\/ # /, BOOT_TIMEOUT_MS);
    await fn(vm);
  });
}

/**
 * The last `n` lines of a command's output. GuestProcess.run drops the echoed command up to its first
 * newline, but a command longer than the terminal's width is echoed wrapped, leaving its tail in front.
 */
function lastLines(output: string, n: number): string[] {
  return output.trimEnd().split("\n").slice(-n);
}

Deno.test({
  name: "--rng: the Guest's /dev/hwrng is virtio_rng and gives 16 fresh bytes per read",
  ignore,
  sanitizeResources: false,
  async fn() {
    await withShell(["--rng"], ["console=ttyS0", ...FAST_ARGS], async (vm) => {
      assertEquals((await vm.run("cat /sys/class/misc/hw_random/rng_current")).trim(), "virtio_rng.0");
      const read = async () => {
        const out = await vm.run("dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1");
        const bytes = lastLines(out, 1)[0].trim().split(/\s+/);
        assertEquals(bytes.length, 16, out);
        assert(bytes.every((b) => /^[0-9a-f]{2}$/.test(b)), out);
        return bytes.join("");
      };
      const first = await read();
      const second = await read();
      assert(first !== second, `two reads gave the same bytes: ${first}`);
      await vm.powerOff();
    });
  },
});

Deno.test({
  name: "console=hvc0: the shell runs on virtio-console and answers typed commands",
  ignore,
  sanitizeResources: false,
  async fn() {
    await withShell([], ["console=ttyS0", ...FAST_ARGS, "console=hvc0"], async (vm) => {
      assertEquals((await vm.run("tty")).trim(), "/dev/hvc0");
      assertEquals((await vm.run("echo answer-$((6*7))")).trim(), "answer-42");
      const dmesg = await vm.run("dmesg | grep -c 'console \\[hvc0\\] enabled'");
      assertEquals(dmesg.trim(), "1");
      // A longer line in and a longer output back (more than one virtqueue buffer's worth).
      const long = await vm.run(`echo ${"x".repeat(300)} | wc -c; seq 1 3000 | tail -n 1`);
      assertEquals(lastLines(long, 2).map((l) => l.trim()), ["301", "3000"]);
      await vm.powerOff();
    });
  },
});
