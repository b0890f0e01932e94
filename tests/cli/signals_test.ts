/**
 * Signals to the Launcher (issue #8): SIGUSR2 prints the machine state and never stops it; SIGTERM,
 * SIGINT and SIGHUP end it cleanly with exit code 128 + the signal. The Guest is a ROM of ours
 * (assembled at test time with nasm) that says "ready" on COM1 and then spins forever.
 * The terminal's restoration on a real TTY is checked in tests/boot/terminal_pty_test.ts.
 */
import { assert, assertEquals } from "../assert.ts";
import { assemble, nasmUnavailableReason } from "../x86/system/asm.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

const IDLE_ROM = `
bits 16
org 0
start:
  mov ax, 0xF000
  mov ds, ax
  mov si, msg
  mov dx, 0x3F8
.next:
  lodsb
  test al, al
  jz .idle
  out dx, al            ; COM1
  jmp .next
.idle:
  jmp .idle             ; interrupts stay off: the PIT must not find our empty IVT
msg: db "ready", 10, 0
times 0xFFF0 - ($ - $$) db 0
  jmp 0xF000:start      ; F000:FFF0
times 0x10000 - ($ - $$) db 0
`;

/** Starts the idle ROM, waits for "ready", sends `signals` in order (100 ms apart), returns the result. */
async function signalled(rom: string, signals: Deno.Signal[]): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, `--firmware=${rom}`, "16"],
    stdin: "piped", // stays open: the launcher must not end for lack of input
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  let out = "";
  while (!out.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  for (const s of signals) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    child.kill(s);
  }
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
    child.stdout.cancel(),
    child.stdin.close().catch(() => {}),
  ]);
  return { code: status.code, stderr };
}

Deno.test({
  name: "launcher ends with 128 + the signal on SIGTERM, SIGINT and SIGHUP; SIGUSR2 only dumps its state",
  ignore: nasmUnavailableReason() !== null || Deno.build.os === "windows",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const rom = `${dir}/idle.bin`;
      await Deno.writeFile(rom, assemble(IDLE_ROM).bytes);
      const dumped = await signalled(rom, ["SIGUSR2", "SIGUSR2", "SIGTERM"]);
      assertEquals(dumped.code, 143, dumped.stderr);
      assertEquals(dumped.stderr.split("machine state:").length - 1, 2, dumped.stderr);
      assert(/cpu eip=\w+ eflags=\w+ halted=false/.test(dumped.stderr), dumped.stderr);
      assert(dumped.stderr.includes("SIGTERM to the launcher"), dumped.stderr);
      assert(!dumped.stderr.includes("    at "), `no stack: ${dumped.stderr}`);
      assertEquals((await signalled(rom, ["SIGINT"])).code, 130);
      assertEquals((await signalled(rom, ["SIGHUP"])).code, 129);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
