/**
 * The host side of one launch, which outlives every reboot of the Guest (PC or lguest): the terminal
 * (stdin's reader is taken once, raw mode is set once), the signal handlers, and the Machine of the
 * boot now running. Also the exit codes: how a boot ended, turned into the Launcher's exit status.
 */
import { Terminal } from "../backends/terminal.ts";
import type { Machine, RunResult } from "../machine/machine.ts";
import { warn } from "../support/log.ts";

/** Exit codes, documented in the README and `--help` (2, a launch error, is main.ts's). */
export const EXIT_POWEROFF = 0;
export const EXIT_CRASH = 1;
export const EXIT_HALT = 3;
/** The user quit from the host side with three Ctrl-C. */
export const EXIT_QUIT = 4;
/** Signals that end the Launcher cleanly; the exit code is 128 + the number, as a shell reports it. */
export const EXIT_SIGNALS: Readonly<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/** How one boot ended, with the exit status the Guest left on the exit-status port (-1: none). */
export interface BootResult {
  result: RunResult;
  exitStatus: number;
}

export class LaunchSession {
  readonly terminal: Terminal;
  machine: Machine | null = null;
  /** Where terminal input goes in the current boot. */
  input: (bytes: Uint8Array) => void = () => {};
  /** The state dump of the current boot. */
  describe: () => string = () => "no guest running";
  /** The signal that ended the launch, if one did. */
  signal: string | null = null;
  #handlers: [Deno.Signal, () => void][] = [];

  constructor() {
    this.terminal = new Terminal({
      onInput: (bytes) => this.input(bytes),
      onQuit: () => this.machine?.stop("quit", "three Ctrl-C: quit from the host"),
    });
  }

  /** Starts the terminal and takes over SIGTERM, SIGINT, SIGHUP (a clean stop) and SIGUSR2 (a dump). */
  start(): void {
    this.terminal.start();
    if (Deno.build.os === "windows") return;
    for (const name of Object.keys(EXIT_SIGNALS) as Deno.Signal[]) {
      this.#listen(name, () => {
        this.signal ??= name;
        this.machine?.stop("signal", `${name} to the launcher`);
      });
    }
    this.#listen("SIGUSR2", () => warn(`machine state:\n${this.describe()}`));
  }

  /**
   * Makes `machine` the running boot: input, the dump and the signals reach it from now on. A
   * signal that came between two boots stops it at once.
   */
  attach(machine: Machine, input: (bytes: Uint8Array) => void, describe: () => string): void {
    this.machine = machine;
    this.input = input;
    this.describe = describe;
    if (this.signal !== null) machine.stop("signal", `${this.signal} to the launcher`);
  }

  /** The boot has ended: input is dropped until the next one, the output flushed. */
  detach(): void {
    this.machine = null;
    this.input = () => {};
    this.describe = () => "between boots";
    this.terminal.flush();
  }

  /**
   * Runs boots until one ends for good: a restart (the Guest's reboot) boots afresh with the same
   * arguments unless `--no-reboot` or a signal says otherwise. Resolves to the exit code.
   */
  async run(boot: () => Promise<BootResult>, noReboot: boolean, log: (msg: string) => void): Promise<number> {
    this.start();
    try {
      for (;;) {
        const { result, exitStatus } = await boot();
        if (result.kind === "reboot" && !noReboot && this.signal === null) {
          log(`guest rebooted (${result.reason}): starting it again`);
          continue;
        }
        if (result.kind === "poweroff" && exitStatus >= 0 && this.signal === null) return exitStatus;
        return this.exitCodeFor(result);
      }
    } finally {
      this.finish();
    }
  }

  /** Restores the terminal. The SIGUSR2 listener stays: a dump request must never kill us. */
  finish(): void {
    this.terminal.restore();
    for (const [name, handler] of this.#handlers) {
      if (name !== "SIGUSR2") Deno.removeSignalListener(name, handler);
    }
    this.describe = () => "the guest has stopped";
  }

  /** The exit code for how the last boot ended: 128 + the signal when one stopped the launch. */
  exitCodeFor(result: RunResult): number {
    if (this.signal === null) return exitCodeFor(result);
    warn(`guest stopped: ${this.signal} to the launcher`);
    return 128 + EXIT_SIGNALS[this.signal];
  }

  #listen(name: Deno.Signal, handler: () => void): void {
    Deno.addSignalListener(name, handler);
    this.#handlers.push([name, handler]);
  }
}

/** Reports how the Guest stopped and picks the exit code. */
export function exitCodeFor(result: RunResult): number {
  switch (result.kind) {
    case "poweroff":
      return EXIT_POWEROFF;
    case "halt":
      warn(result.reason);
      return EXIT_HALT;
    case "reboot":
      warn(`guest rebooted: ${result.reason}`);
      return EXIT_POWEROFF;
    case "quit":
      warn(`guest stopped: ${result.reason}`);
      return EXIT_QUIT;
    case "signal":
      warn(`guest stopped: ${result.reason}`);
      return EXIT_CRASH; // LaunchSession.exitCodeFor returns 128 + the signal's number instead
    default:
      warn(`guest stopped: ${result.reason}`);
      return EXIT_CRASH;
  }
}
