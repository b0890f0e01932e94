/**
 * Runs lguest.ts as a user would (`deno run -A main.ts ...` in a child process) and talks to the
 * Guest through its console: wait for text in the output, type input. Used by the boot tests.
 */

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

export class GuestProcess {
  readonly child: Deno.ChildProcess;
  #output = "";
  #stderr = "";
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #done: Promise<void>;
  #waiters: (() => void)[] = [];
  /** Set once stdout and stderr have closed (the launcher exited). */
  #ended = false;

  /**
   * Starts `main.ts` with `args`. Guests run with `--deterministic` (time follows instructions), so a
   * test behaves the same on a loaded CI machine as on an idle one. Networked guests pass
   * `{ deterministic: false }`: a deterministic guest that idles skips its clock to the next timer,
   * so while it waits for a peer's frame its timeouts (TCP retransmits, ping) fire at once.
   */
  constructor(args: string[], options: { deterministic?: boolean } = {}) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, ...(options.deterministic === false ? [] : ["--deterministic"]), ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.child.stdin.getWriter();
    const pump = async (stream: ReadableStream<Uint8Array>, onText: (t: string) => void) => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) {
        onText(decoder.decode(chunk, { stream: true }));
        for (const w of this.#waiters.splice(0)) w();
      }
    };
    this.#done = Promise.all([
      pump(this.child.stdout, (t) => this.#output += t),
      pump(this.child.stderr, (t) => this.#stderr += t),
    ]).then(() => {
      this.#ended = true;
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Everything the Guest wrote to the console so far. */
  get output(): string {
    return this.#output;
  }
  get stderr(): string {
    return this.#stderr;
  }

  /** Waits until the console output matches `pattern` (searching from `from`); returns the match. */
  async waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpMatchArray> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const m = this.#output.slice(from).match(pattern);
      if (m) return m;
      const left = deadline - performance.now();
      if (left <= 0 || this.#ended) {
        const why = this.#ended ? "the launcher exited" : `timed out after ${timeoutMs} ms`;
        throw new Error(
          `${why} waiting for ${pattern}; console tail:\n${
            this.#output.slice(-2000)
          }\nstderr:\n${this.#stderr}`,
        );
      }
      let id: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        id = setTimeout(resolve, Math.min(left, 1000));
      });
      clearTimeout(id);
    }
  }

  /** Types `text` into the Guest's console. */
  async type(text: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(text));
  }

  /**
   * Runs a shell command and returns what it printed. The command is followed by an echo of a
   * computed marker, so the echoed command line itself never matches.
   */
  async run(command: string, timeoutMs = 120_000): Promise<string> {
    const id = Math.floor(Math.random() * 1e6);
    const from = this.#output.length;
    await this.type(`${command}; echo @@$((${id}+1))@@\n`);
    const m = await this.waitFor(new RegExp(`@@${id + 1}@@`), timeoutMs, from);
    const end = from + m.index!;
    // The output starts after the echoed command line, which ends with the marker expression (the
    // terminal may wrap a long command over several lines).
    const echoed = this.#output.indexOf(`${id}+1))@@`, from);
    const start = echoed >= 0 && echoed < end ? this.#output.indexOf("\n", echoed) + 1 : from;
    return this.#output.slice(start, end).replace(/\r/g, "");
  }

  /**
   * Closes the Guest's input and waits for the process to exit; returns its exit code. Closing the
   * input is itself input: at its end of file the console types ^D into the Guest (terminal.ts),
   * at a moment set by the host. A Guest that ends by itself and whose run must not depend on host
   * timing (a deterministic boot compared instruction for instruction) passes `{ keepInput: true }`:
   * its input stays open until it has exited.
   */
  async exit(timeoutMs: number, options: { keepInput?: boolean } = {}): Promise<number> {
    const timer = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, timeoutMs);
    try {
      if (options.keepInput === true) await this.child.status;
      await this.#writer.close().catch(() => {});
      const status = await this.child.status;
      await this.#done;
      return status.code;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Types `poweroff -f` and waits for the launcher to exit, which must be with code 0 (the Guest
   * powered off through ACPI rather than panicking or hanging).
   */
  async powerOff(timeoutMs = 120_000): Promise<void> {
    await this.type("poweroff -f\n");
    const code = await this.exit(timeoutMs);
    if (code !== 0) throw new Error(`exit code ${code}; stderr: ${this.stderr}`);
  }

  /** Kills the process (cleanup after a failed test). */
  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* already exited */ }
    await this.exit(10_000).catch(() => {});
  }
}

/**
 * Starts a Guest with `args` and `options` (as the GuestProcess constructor) and returns what `fn`
 * returns. If `fn` throws, the launcher is killed before the error goes on, so a failed test leaves
 * no process behind; when `fn` succeeds it has ended the Guest itself (usually with powerOff).
 */
export async function withGuest<T>(
  args: string[],
  fn: (vm: GuestProcess) => Promise<T>,
  options: { deterministic?: boolean } = {},
): Promise<T> {
  const vm = new GuestProcess(args, options);
  try {
    return await fn(vm);
  } catch (e) {
    await vm.kill();
    throw e;
  }
}
