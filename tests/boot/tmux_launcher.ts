/**
 * The Launcher in a terminal emulator for the tests: its own tmux server (-L) running main.ts in a
 * 100x30 window, whose screen, exit code and `stty -a` afterwards the test reads. tmux answers the
 * shell's cursor-position query (ESC[6n) as a user's terminal does.
 */
import { assert } from "../assert.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const dec = new TextDecoder();

/** True when a tmux binary runs here (.ci/run installs it). */
export function tmuxAvailable(): boolean {
  try {
    return new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

/** One tmux server of our own (-L) running the launcher in a 100x30 window. */
export class TmuxLauncher {
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

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The terminal is back in cooked mode with echo: what a shell needs after the launcher. */
export async function assertRestored(dir: string): Promise<void> {
  const stty = await Deno.readTextFile(`${dir}/stty`);
  assert(/(^|\s)icanon(\s|$)/.test(stty) && /(^|\s)echo(\s|$)/.test(stty), `terminal left raw:\n${stty}`);
}
