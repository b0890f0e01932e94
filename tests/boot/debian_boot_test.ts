/**
 * The real Debian 12 686 kernel boots to a busybox shell through the launcher (issue #3): commands
 * typed into the serial console get the right answers, and the guest powers off. Rule 11: boots
 * use the real kernel, fetched by tools/fetch_guest.ts.
 */
import { assert, assertEquals } from "../assert.ts";
import { guest, skipReason } from "../tools/guest_fixture.ts";
import { withGuest } from "./guest_process.ts";

const ignore = guest === undefined;
if (ignore) console.warn(`boot tests skipped: ${skipReason}`);

/** Kernel arguments that skip work irrelevant here (crypto self-tests, ISA PnP probing). */
export const FAST_ARGS = ["console=ttyS0", "cryptomgr.notests=1", "noisapnp"];
const BOOT_TIMEOUT_MS = 600_000;

Deno.test({
  name: "launcher boots the Debian kernel (ELF vmlinux) to a shell that answers on the serial console",
  ignore,
  sanitizeResources: false,
  async fn() {
    const g = guest!;
    await withGuest([`--initrd=${g.initrd}`, "256", g.vmlinux ?? g.kernel, ...FAST_ARGS], async (vm) => {
      await vm.waitFor(/LGUEST-TS-READY (\S+)/, BOOT_TIMEOUT_MS);
      await vm.waitFor(/\/ # /, 120_000);
      assertEquals((await vm.run("uname -r")).trim(), g.version);
      const cpuinfo = await vm.run("cat /proc/cpuinfo");
      assert(/vendor_id\s*: GenuineIntel/.test(cpuinfo), cpuinfo);
      assert(/model name\s*: lguest\.ts i686 interpreter/.test(cpuinfo), cpuinfo);
      for (const flag of ["fpu", "tsc", "cx8", "cmov", "pse", "pge", "sep", "fxsr"]) {
        assert(new RegExp(`flags\\s*:.*\\b${flag}\\b`).test(cpuinfo), `missing ${flag}: ${cpuinfo}`);
      }
      // An arithmetic loop in the shell, and floating point through busybox awk.
      const sum = await vm.run(
        "i=0; s=0; while [ $i -lt 2000 ]; do s=$((s+i*i)); i=$((i+1)); done; echo sum=$s",
      );
      assert(sum.includes("sum=2664667000"), sum);
      const fp = await vm.run(
        "awk 'BEGIN { x = 1; for (i = 1; i <= 20; i++) x = x * 1.5 + 0.1; printf \"%.4f %.6f\\n\", x, 22 / 7 }'",
      );
      assert(fp.includes("3990.1081 3.142857"), fp);
      await vm.powerOff();
    });
  },
});

/**
 * Boots the bzImage with `launcherArgs` and `lguest_run="echo hello-from-$(uname -r)"`, checks the
 * command ran and the guest powered off; returns the launcher's stderr.
 */
async function bootBzImage(launcherArgs: string[]): Promise<string> {
  const g = guest!;
  const args = [
    ...launcherArgs,
    `--initrd=${g.initrd}`,
    "256",
    g.kernel,
    ...FAST_ARGS,
    "quiet",
    'lguest_run="echo hello-from-$(uname -r)"',
  ];
  return await withGuest(args, async (vm) => {
    await vm.waitFor(new RegExp(`hello-from-${g.version.replace(/[.+]/g, "\\$&")}`), BOOT_TIMEOUT_MS);
    await vm.waitFor(/LGUEST-TS-EXIT 0/, 60_000);
    const code = await vm.exit(120_000);
    assertEquals(code, 0, `exit code ${code}; stderr: ${vm.stderr}`);
    return vm.stderr;
  });
}

Deno.test({
  name: "launcher boots the Debian bzImage through its in-guest decompressor and runs a command",
  ignore,
  sanitizeResources: false,
  async fn() {
    const stderr = await bootBzImage(["--verbose", "--guest-decompress"]);
    assert(!stderr.includes("decompressed on the host"), stderr);
  },
});

Deno.test({
  name: "launcher decompresses the Debian bzImage's xz payload on the host and boots the vmlinux inside",
  ignore,
  sanitizeResources: false,
  async fn() {
    const stderr = await bootBzImage(["--verbose"]);
    assert(/bzImage payload \(xz\) decompressed on the host in \d+ ms/.test(stderr), stderr);
  },
});

Deno.test({
  name: "launcher ends with exit code 1 and the reason when the guest kernel panics",
  ignore,
  sanitizeResources: false,
  async fn() {
    const g = guest!;
    const args = [
      `--initrd=${g.initrd}`,
      "64",
      g.vmlinux ?? g.kernel,
      ...FAST_ARGS,
      "quiet",
      "rdinit=/nonexistent",
    ];
    await withGuest(args, async (vm) => {
      const code = await vm.exit(BOOT_TIMEOUT_MS);
      assertEquals(code, 1, vm.stderr);
      assert(
        /guest stopped: Kernel panic - not syncing: VFS: Unable to mount root fs/.test(vm.stderr),
        vm.stderr,
      );
    });
  },
});

Deno.test({
  name:
    "with the host clock (no --deterministic) the TSC calibrates against the PIT, guest time follows the host's and the shell keeps answering",
  ignore,
  sanitizeResources: false,
  async fn() {
    const g = guest!;
    const args = [`--initrd=${g.initrd}`, "256", g.vmlinux ?? g.kernel, ...FAST_ARGS];
    await withGuest(args, async (vm) => {
      await vm.waitFor(/\/ # /, BOOT_TIMEOUT_MS);
      const uptime = /^(\d+\.\d+) /m;
      // The guest's timer interrupt once stopped for good after a few commands: type several.
      for (let i = 0; i < 5; i++) {
        const wallStart = performance.now();
        const out = await vm.run("cat /proc/uptime; sleep 1; cat /proc/uptime");
        const wallSeconds = (performance.now() - wallStart) / 1000;
        const [before, after] = [...out.matchAll(new RegExp(uptime, "gm"))].map((m) => Number(m[1]));
        assert(before !== undefined && after !== undefined, out);
        const guestSeconds = after - before;
        assert(
          guestSeconds >= 1 && guestSeconds <= wallSeconds + 0.1,
          `guest ${guestSeconds} s, host ${wallSeconds} s`,
        );
      }
      // Issue #11: host stalls never show as gaps between two guest instructions, so the kernel's
      // quick PIT calibration of the TSC succeeds (it used to fall back to the PM timer every time).
      const tsc = await vm.run("dmesg | grep 'tsc:'");
      assert(tsc.includes("tsc: Fast TSC calibration using PIT"), tsc);
      await vm.powerOff();
    }, { deterministic: false });
  },
});
