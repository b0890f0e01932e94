/**
 * The Launcher survives every way a Guest ends (issue #8), with piped stdin and the real kernel: plain
 * `reboot` and `reboot -f` restart the Guest (twice in a row), `kill -USR2` dumps the state without
 * stopping anything, plain `poweroff` exits 0. And `deno task start` boots the cached reference Guest
 * with launcher options passed through, `lguest_run=` gives the command's exit status as the exit
 * code, and the end of stdin reaches the Guest as the end of input.
 */
import { assert, assertEquals } from "../assert.ts";
import { guest, skipReason } from "../tools/guest_fixture.ts";
import { withGuest } from "./guest_process.ts";

const ignore = guest === undefined;
if (ignore) console.warn(`lifecycle tests skipped: ${skipReason}`);
const BOOT_TIMEOUT_MS = 600_000;
/** As debian_boot_test.ts's (not imported: that would register its tests here too). */
const FAST_ARGS = ["console=ttyS0", "cryptomgr.notests=1", "noisapnp"];

Deno.test({
  name:
    "launcher restarts the Guest on reboot and reboot -f in a row, survives SIGUSR2, exits 0 on poweroff; a snapshot disk's writes last the launch",
  ignore,
  sanitizeResources: false,
  async fn() {
    const g = guest!;
    const dir = await Deno.makeTempDir({ prefix: "lguest-lifecycle-" });
    const disk = `${dir}/snap.img`;
    const base = new Uint8Array(1 << 20).fill(0x5A);
    await Deno.writeFile(disk, base);
    await withGuest(
      [
        `--initrd=${g.initrd}`,
        `--block=${disk},snapshot`,
        "256",
        g.vmlinux ?? g.kernel,
        ...FAST_ARGS,
        "quiet",
      ],
      async (vm) => {
        const prompt = async (n: number) => {
          for (let at = 0, i = 0; i < n; i++) {
            const m = await vm.waitFor(/\/ # /, BOOT_TIMEOUT_MS, at);
            at += m.index! + 1;
          }
        };
        const ready = async (n: number) => {
          for (let at = 0, i = 0; i < n; i++) {
            const m = await vm.waitFor(/LGUEST-TS-READY/, BOOT_TIMEOUT_MS, at);
            at += m.index! + 1;
          }
        };
        await prompt(1);
        // As QEMU's -snapshot: the temporary layer lasts until the launcher exits, across reboots.
        const wrote = await vm.run(
          "echo snapshot-marker-kept | dd of=/dev/vda bs=512 seek=9 conv=fsync 2>/dev/null; echo dd=$?",
        );
        assert(wrote.includes("dd=0"), wrote);
        vm.child.kill("SIGUSR2");
        assertEquals((await vm.run("echo alive-$((6*7))")).trim(), "alive-42");
        // The report is written when the launcher's event loop gets to the signal: on a loaded host
        // that can come after the guest has answered.
        for (let i = 0; i < 300 && !vm.stderr.includes("machine state:"); i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
        assert(vm.stderr.includes("machine state:"), vm.stderr);
        await vm.type("reboot\n"); // busybox init's shutdown, then the kernel's restart
        await ready(2);
        await vm.waitFor(/\/ # /, BOOT_TIMEOUT_MS, vm.output.lastIndexOf("LGUEST-TS-READY"));
        await vm.type("reboot -f\n");
        await ready(3);
        await vm.waitFor(/\/ # /, BOOT_TIMEOUT_MS, vm.output.lastIndexOf("LGUEST-TS-READY"));
        assertEquals((await vm.run("echo third-boot")).trim(), "third-boot");
        const kept = await vm.run("dd if=/dev/vda bs=512 skip=9 count=1 2>/dev/null | head -c 21");
        assert(kept.includes("snapshot-marker-kept"), `the snapshot layer lost its write at reboot: ${kept}`);
        await vm.type("poweroff\n");
        const code = await vm.exit(BOOT_TIMEOUT_MS);
        assertEquals(code, 0, vm.stderr);
        assert(!vm.stderr.includes("ReadableStream"), vm.stderr);
        assertEquals(vm.output.match(/LGUEST-TS-READY/g)?.length, 3);
      },
    );
    assertEquals(await Deno.readFile(disk), base, "the snapshot disk's file is unchanged");
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name:
    "deno task start passes options through; lguest_run's exit status is the exit code; stdin's end ends cat",
  ignore,
  sanitizeResources: false,
  async fn() {
    const root = new URL("../..", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "task",
        "--quiet",
        "start",
        "--",
        "--deterministic",
        "--rng",
        "quiet",
        'lguest_run="cat; ls /dev/hwrng; exit 7"',
      ],
      cwd: root,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("line-from-stdin\n"));
    await writer.close(); // cat must see the end of its input, or this test times out
    const timer = setTimeout(() => child.kill("SIGKILL"), BOOT_TIMEOUT_MS);
    const out = await child.output();
    clearTimeout(timer);
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 7, `${stderr}\n${stdout.slice(-2000)}`);
    // The line itself may be lost: it arrives before the guest has opened its console (as keys typed
    // into a PC before it booted); the end of input after it must reach cat, or there is no exit 7.
    assert(stdout.includes("/dev/hwrng"), `--rng reached the launcher: ${stdout}`);
    assert(stdout.includes("LGUEST-TS-EXIT 7"), stdout);
  },
});
