/**
 * The Launcher on a real terminal (issue #8), through tmux, a terminal emulator that answers the
 * shell's cursor-position query (ESC[6n) as a user's terminal does: the guest's serial console and
 * hvc0 get the terminal's size and hvc0 follows a resize (a config interrupt on SIGWINCH), a guest
 * reboot keeps the terminal working, three Ctrl-C typed at the busybox prompt quit (exit code 4),
 * and SIGTERM ends the launcher (143); each time the terminal is restored (canonical mode and echo
 * back on). Skipped where tmux is not installed (.ci/run installs it).
 */
import { assert, assertEquals } from "../assert.ts";
import { guest, skipReason } from "../tools/guest_fixture.ts";
import { assertRestored, delay, tmuxAvailable, TmuxLauncher } from "./tmux_launcher.ts";

const ignore = guest === undefined || !tmuxAvailable();
if (guest === undefined) console.warn(`pty tests skipped: ${skipReason}`);
else if (ignore) console.warn("pty tests skipped: tmux is not installed");

const BOOT_TIMEOUT_MS = 600_000;
/** As debian_boot_test.ts's (not imported: that would register its tests here too). */
const FAST_ARGS = ["console=ttyS0", "cryptomgr.notests=1", "noisapnp"];

Deno.test({
  name:
    "launcher on a tmux terminal: ttyS0 and hvc0 sized like it, hvc0 follows a resize, survives reboot -f, three Ctrl-C at the prompt quit",
  ignore,
  sanitizeResources: false,
  async fn() {
    const g = guest!;
    const dir = await Deno.makeTempDir();
    const t = new TmuxLauncher(dir);
    try {
      // Both consoles, hvc0 last (the shell's): ttyS0 gets its size from lguest_tty= through the
      // init, hvc0 from virtio-console's VIRTIO_CONSOLE_F_SIZE, and follows the window's resize.
      t.start([
        "--deterministic",
        `--initrd=${g.initrd}`,
        "256",
        g.vmlinux ?? g.kernel,
        ...FAST_ARGS,
        "console=hvc0",
      ]);
      await t.waitFor(/\/ # /, BOOT_TIMEOUT_MS);
      t.tmux("send-keys", "-t", "vm", "stty size; stty -F /dev/ttyS0 size; echo size-checked", "Enter");
      await t.waitFor(/30 100\s+30 100\s+size-checked/, 60_000);
      t.tmux("resize-window", "-t", "vm", "-x", "120", "-y", "40");
      await delay(1000);
      t.tmux("send-keys", "-t", "vm", "stty size; echo resize-checked", "Enter");
      await t.waitFor(/40 120\s+resize-checked/, 60_000);
      t.tmux("send-keys", "-t", "vm", "reboot -f", "Enter");
      await t.waitFor(/LGUEST-TS-READY/, BOOT_TIMEOUT_MS, 2);
      await t.waitFor(/\/ # /, BOOT_TIMEOUT_MS, 4); // boot 1 showed three
      t.tmux("send-keys", "-t", "vm", "echo second-$((20+22))", "Enter");
      await t.waitFor(/second-42\s/, 60_000);
      // Typing speed: 0.2 s apart. Each ^C makes ash print a new prompt and ask ESC[6n; tmux answers.
      for (let i = 0; i < 3; i++) {
        t.tmux("send-keys", "-t", "vm", "C-c");
        await delay(200);
      }
      const code = await t.exitCode(60_000);
      const stderr = await Deno.readTextFile(`${dir}/stderr`);
      assertEquals(code, 4, `${stderr}\n${t.screen().slice(-2000)}`);
      assert(stderr.includes("three Ctrl-C"), stderr);
      await assertRestored(dir);
    } finally {
      t.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "launcher on a tmux terminal: SIGTERM mid-boot exits 143 with the terminal restored",
  ignore,
  sanitizeResources: false,
  async fn() {
    const g = guest!;
    const dir = await Deno.makeTempDir();
    const t = new TmuxLauncher(dir);
    try {
      t.start(["--deterministic", `--initrd=${g.initrd}`, "256", g.vmlinux ?? g.kernel, ...FAST_ARGS]);
      await t.waitFor(/\[ *\d+\.\d+\] /, BOOT_TIMEOUT_MS); // the kernel is printing
      Deno.kill(t.launcherPid(), "SIGTERM");
      const code = await t.exitCode(60_000);
      const stderr = await Deno.readTextFile(`${dir}/stderr`);
      assertEquals(code, 143, stderr);
      assert(stderr.includes("SIGTERM to the launcher"), stderr);
      await assertRestored(dir);
    } finally {
      t.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
