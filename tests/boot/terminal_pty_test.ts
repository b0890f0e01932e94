/**
 * The Launcher on a real terminal (issue #8), through tmux, a terminal emulator that answers the
 * shell's cursor-position query (ESC[6n) as a user's terminal does: the guest's serial console gets
 * the terminal's size, a guest reboot keeps the terminal working, three Ctrl-C typed at the busybox
 * prompt quit (exit code 4), and SIGTERM ends the launcher (143); each time the terminal is restored
 * (canonical mode and echo back on). Skipped where tmux is not installed (.ci/run installs it).
 */
import { assert, assertEquals } from "../assert.ts";
import { guest, skipReason } from "../tools/guest_fixture.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const dec = new TextDecoder();

function tmuxAvailable(): boolean {
  try {
    return new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

const ignore = guest === undefined || !tmuxAvailable();
if (guest === undefined) console.warn(`pty tests skipped: ${skipReason}`);
else if (ignore) console.warn("pty tests skipped: tmux is not installed");

const BOOT_TIMEOUT_MS = 600_000;
/** As debian_boot_test.ts's (not imported: that would register its tests here too). */
const FAST_ARGS = ["console=ttyS0", "cryptomgr.notests=1", "noisapnp"];

/** One tmux server of our own (-L) running the launcher in a 100x30 window. */
class TmuxLauncher {
  readonly socket = `lguest-test-${Deno.pid}-${Math.floor(Math.random() * 1e9)}`;
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }

  tmux(...args: string[]): string {
    const out = new Deno.Command("tmux", {
      args: ["-L", this.socket, ...args],
      stdout: "piped",
      stderr: "piped",
    })
      .outputSync();
    if (!out.success) throw new Error(`tmux ${args.join(" ")}: ${dec.decode(out.stderr)}`);
    return dec.decode(out.stdout);
  }

  /** Starts `launcherArgs` in the window; when it exits, its exit code and `stty -a` land in files. */
  start(launcherArgs: string[]): void {
    const quoted = [Deno.execPath(), "run", "-A", MAIN, ...launcherArgs].map((a) =>
      `'${a.replaceAll("'", "'\\''")}'`
    );
    // A script file: no quoting through tmux's own shell.
    Deno.writeTextFileSync(
      `${this.dir}/run.sh`,
      `${
        quoted.join(" ")
      } 2>${this.dir}/stderr\necho $? >${this.dir}/code\nstty -a >${this.dir}/stty\nsleep 600\n`,
    );
    this.tmux("new-session", "-d", "-x", "100", "-y", "30", "-s", "vm", `sh ${this.dir}/run.sh`);
  }

  /** The window's whole scrollback. */
  screen(): string {
    return this.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "vm");
  }

  async waitFor(pattern: RegExp, timeoutMs: number, count = 1): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const text = this.screen();
      const matches = text.match(new RegExp(pattern.source, "g"))?.length ?? 0;
      if (matches >= count) return;
      if (performance.now() > deadline) {
        throw new Error(`timed out waiting for ${pattern} x${count}:\n${text.slice(-3000)}`);
      }
      await delay(500);
    }
  }

  /** The launcher's exit code once it has exited. */
  async exitCode(timeoutMs: number): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      try {
        const text = await Deno.readTextFile(`${this.dir}/code`);
        if (text.trim() !== "") {
          await delay(500); // stty -a runs next
          return Number(text.trim());
        }
      } catch { /* not yet */ }
      if (performance.now() > deadline) {
        throw new Error(`the launcher did not exit:\n${this.screen().slice(-3000)}`);
      }
      await delay(250);
    }
  }

  /** The launcher's process id (the child of the window's shell). */
  launcherPid(): number {
    const shell = this.tmux("display-message", "-p", "-t", "vm", "#{pane_pid}").trim();
    const out = new Deno.Command("pgrep", { args: ["-P", shell], stdout: "piped" }).outputSync();
    return Number(dec.decode(out.stdout).trim().split("\n")[0]);
  }

  kill(): void {
    try {
      this.tmux("kill-server");
    } catch { /* already gone */ }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The terminal is back in cooked mode with echo: what a shell needs after the launcher. */
async function assertRestored(dir: string): Promise<void> {
  const stty = await Deno.readTextFile(`${dir}/stty`);
  assert(/(^|\s)icanon(\s|$)/.test(stty) && /(^|\s)echo(\s|$)/.test(stty), `terminal left raw:\n${stty}`);
}

Deno.test({
  name:
    "launcher on a tmux terminal: guest sized like it, survives reboot -f, three Ctrl-C at the prompt quit",
  ignore,
  sanitizeResources: false,
  async fn() {
    const g = guest!;
    const dir = await Deno.makeTempDir();
    const t = new TmuxLauncher(dir);
    try {
      t.start(["--deterministic", `--initrd=${g.initrd}`, "256", g.vmlinux ?? g.kernel, ...FAST_ARGS]);
      await t.waitFor(/\/ # /, BOOT_TIMEOUT_MS);
      t.tmux("send-keys", "-t", "vm", "stty size; echo size-checked", "Enter");
      await t.waitFor(/30 100\s+size-checked/, 60_000);
      t.tmux("send-keys", "-t", "vm", "reboot -f", "Enter");
      await t.waitFor(/LGUEST-TS-READY/, BOOT_TIMEOUT_MS, 2);
      await t.waitFor(/\/ # /, BOOT_TIMEOUT_MS, 3);
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
