/** The console Backend with a fake stdin/stdout (the only fakes: the host's terminal). */
import { assert, assertEquals } from "../assert.ts";
import { Terminal, type TerminalInput, type TerminalOutput } from "../../lib/backends/terminal.ts";
import { setLogSink } from "../../lib/support/log.ts";

class FakeStdin implements TerminalInput {
  rawCalls: boolean[] = [];
  controller!: ReadableStreamDefaultController<Uint8Array>;
  cancelled = false;
  readonly readable: ReadableStream<Uint8Array>;
  constructor(readonly tty: boolean) {
    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.controller = controller;
      },
      cancel: () => {
        this.cancelled = true;
      },
    });
  }
  isTerminal(): boolean {
    return this.tty;
  }
  setRaw(mode: boolean): void {
    this.rawCalls.push(mode);
  }
  type(bytes: number[]): void {
    this.controller.enqueue(new Uint8Array(bytes));
  }
}

class FakeStdout implements TerminalOutput {
  writes: string[] = [];
  /** Accepts at most this many bytes per call, like a full pipe. */
  constructor(readonly maxPerWrite = Infinity) {}
  writeSync(bytes: Uint8Array): number {
    const n = Math.min(bytes.length, this.maxPerWrite);
    this.writes.push(new TextDecoder().decode(bytes.subarray(0, n)));
    return n;
  }
}

/** Lets the terminal's read loop take what was typed. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

function setup(tty: boolean, stdout: TerminalOutput = new FakeStdout()) {
  const stdin = new FakeStdin(tty);
  let nowMs = 0;
  const received: number[] = [];
  let quits = 0;
  let eofs = 0;
  const terminal = new Terminal({
    onInput: (bytes) => received.push(...bytes),
    onQuit: () => quits++,
    onEof: () => eofs++,
    stdin,
    stdout,
    nowMs: () => nowMs,
    size: () => null,
    watchResize: () => () => {},
  });
  return {
    terminal,
    stdin,
    stdout,
    received,
    quits: () => quits,
    eofs: () => eofs,
    setNow: (ms: number) => nowMs = ms,
  };
}

Deno.test("Terminal puts a TTY in raw mode and restore() is idempotent", async () => {
  const { terminal, stdin } = setup(true);
  terminal.start();
  assert(terminal.isRaw);
  assertEquals(stdin.rawCalls, [true]);
  terminal.restore();
  terminal.restore();
  assertEquals(stdin.rawCalls, [true, false]);
  assert(!terminal.isRaw);
  await terminal.inputDone;
  assert(stdin.cancelled, "the pending read was cancelled, so Deno can exit");
});

Deno.test("Terminal leaves a non-TTY stdin alone and reports its end of file", async () => {
  const { terminal, stdin, received, eofs } = setup(false);
  terminal.start();
  stdin.type([0x6C, 0x73, 0x0A]);
  stdin.controller.close();
  await terminal.inputDone;
  assertEquals(stdin.rawCalls, []);
  assertEquals(received, [0x6C, 0x73, 0x0A, 0x04], "the input, then ^D for its end");
  assertEquals(eofs(), 1);
  terminal.restore();
  assertEquals(stdin.rawCalls, []);
});

Deno.test("Terminal quits on three ^C within a second, still passing them to the guest", async () => {
  const { terminal, stdin, received, quits, setNow } = setup(true);
  terminal.start();
  setNow(1000);
  stdin.type([0x03]);
  await settle();
  setNow(1400);
  stdin.type([0x03]);
  await settle();
  assertEquals(quits(), 0);
  setNow(1900);
  stdin.type([0x03]);
  await settle();
  assertEquals(quits(), 1);
  assertEquals(received, [0x03, 0x03, 0x03]);
  terminal.restore();
});

Deno.test("Terminal does not quit on slow ^C or ^C broken by other input", async () => {
  const { terminal, stdin, quits, setNow } = setup(true);
  terminal.start();
  for (const t of [0, 1100, 2200]) {
    setNow(t);
    stdin.type([0x03]);
    await settle();
  }
  assertEquals(quits(), 0, "1.1 s between presses");
  setNow(5000);
  stdin.type([0x03, 0x03, 0x61, 0x03]);
  await settle();
  assertEquals(quits(), 0, "an 'a' in between resets the count");
  terminal.restore();
});

Deno.test("Terminal quits on ^C at any typing speed, each within a second of the one before", async () => {
  const { terminal, stdin, quits, setNow } = setup(true);
  terminal.start();
  for (const t of [0, 900, 1800]) {
    setNow(t);
    stdin.type([0x03]);
    await settle();
  }
  assertEquals(quits(), 1, "0.9 s apart, 1.8 s in all");
  terminal.restore();
});

Deno.test("Terminal's own answers to the shell (ESC[row;colR) do not break the three ^C", async () => {
  const { terminal, stdin, received, quits, setNow } = setup(true);
  terminal.start();
  // busybox ash asks for the cursor position (ESC[6n) at each prompt; the terminal answers as input.
  const answer = [...new TextEncoder().encode("\x1b[24;3R")];
  for (const [i, t] of [100, 300, 500].entries()) {
    setNow(t);
    stdin.type([0x03]);
    await settle();
    if (i < 2) {
      stdin.type(answer);
      stdin.type([0x1B, 0x4F, 0x41]); // an SS3 sequence (ESC O A, a cursor key) is no typing either
      await settle();
    }
  }
  assertEquals(quits(), 1);
  assertEquals(received.filter((b) => b === 0x03).length, 3, "every ^C still reaches the guest");
  terminal.restore();
});

Deno.test("Terminal gives the guest ^D at end of input, and again after each burst of guest output", async () => {
  const { terminal, stdin, received, setNow } = setup(false);
  terminal.start();
  stdin.type([0x6C, 0x73, 0x0A]);
  stdin.controller.close();
  await terminal.inputDone;
  assertEquals(received, [0x6C, 0x73, 0x0A, 0x04], "^D right after the input");
  const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  setNow(10_000);
  await wait(600);
  assertEquals(received.length, 4, "no output since: no second ^D");
  terminal.write(new TextEncoder().encode("/ # "));
  setNow(10_200);
  await wait(400);
  assertEquals(received.length, 4, "output 200 ms ago: too soon");
  setNow(10_600);
  await wait(400);
  assertEquals(received, [0x6C, 0x73, 0x0A, 0x04, 0x04], "a prompt, then quiet: ^D again");
  await wait(600);
  assertEquals(received.length, 5, "one ^D per burst");
  terminal.restore();
});

Deno.test("Terminal reports the host terminal's size and its resizes until restore()", () => {
  let size: { columns: number; rows: number } | null = { columns: 100, rows: 30 };
  let fire = () => {};
  let watching = false;
  const terminal = new Terminal({
    onInput: () => {},
    onQuit: () => {},
    stdin: new FakeStdin(true),
    stdout: new FakeStdout(),
    size: () => size,
    watchResize: (cb) => {
      fire = cb;
      watching = true;
      return () => watching = false;
    },
  });
  assertEquals(terminal.size(), { columns: 100, rows: 30 });
  let resizes = 0;
  terminal.onResize(() => resizes++);
  terminal.start();
  assert(watching);
  size = { columns: 120, rows: 40 };
  fire();
  assertEquals([resizes, terminal.size()], [1, { columns: 120, rows: 40 }]);
  terminal.restore();
  assert(!watching, "SIGWINCH is let go at restore()");
});

Deno.test("Terminal writes output once per task and copes with short writes", async () => {
  const stdout = new FakeStdout(5);
  const { terminal } = setup(false, stdout);
  const encoder = new TextEncoder();
  terminal.write(encoder.encode("Hello, "));
  terminal.write(encoder.encode("world\r\n"));
  assertEquals(stdout.writes, []);
  await Promise.resolve();
  assertEquals(stdout.writes.join(""), "Hello, world\r\n");
  assertEquals(stdout.writes.length, 3, "partial writes are continued");
  terminal.restore();
  terminal.write(encoder.encode("bye"));
  assertEquals(stdout.writes.at(-1), "bye", "after restore output goes straight out");
});

Deno.test("Terminal survives a closed stdout", () => {
  const { terminal } = setup(false, {
    writeSync: () => {
      throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
    },
  });
  const lines: string[] = [];
  const old = setLogSink((line) => lines.push(line));
  try {
    terminal.write(new Uint8Array([0x41]));
    terminal.flush();
    terminal.write(new Uint8Array([0x42]));
    terminal.flush();
    assertEquals(lines, ["lguest: Cannot write to the console: Broken pipe (os error 32)"]);
  } finally {
    setLogSink(old);
  }
});
