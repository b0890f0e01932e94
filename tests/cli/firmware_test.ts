/**
 * `main.ts --firmware=FILE` (issue #2): a ROM of ours, assembled at test time with nasm, runs from
 * the reset vector; POST codes are logged under --verbose, port 0xE9 is a debug console, COM1
 * reaches stdout, and a halt with interrupts disabled ends the run with exit code 3.
 */
import { assert, assertEquals } from "../assert.ts";
import { assemble, nasmUnavailableReason } from "../x86/system/asm.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

const ROM = `
bits 16
org 0
start:
  mov ax, 0xF000
  mov ds, ax
  mov si, msg
.next:
  lodsb
  test al, al
  jz .done
  out 0xE9, al          ; debug console
  mov dx, 0x3F8
  out dx, al            ; COM1
  jmp .next
.done:
  mov al, 0x42
  out 0x80, al          ; POST code
  cli
  hlt
msg: db "hello from the reset vector", 10, 0
times 0xFFF0 - ($ - $$) db 0
  jmp 0xF000:start      ; F000:FFF0
times 0x10000 - ($ - $$) db 0
`;

Deno.test({
  name: "main --firmware runs a ROM from the reset vector with POST codes, debugcon and COM1",
  ignore: nasmUnavailableReason() !== null,
  async fn() {
    const { bytes } = assemble(ROM);
    const dir = await Deno.makeTempDir();
    try {
      const rom = `${dir}/rom.bin`;
      await Deno.writeFile(rom, bytes);
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, `--firmware=${rom}`, "--verbose", "16"],
        stdin: "null",
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 3, stderr);
      assert(stdout.includes("hello from the reset vector"), stdout);
      assert(stderr.includes("debugcon: hello from the reset vector"), stderr);
      assert(/POST code 0x42/.test(stderr), stderr);
      assert(stderr.includes("halted with interrupts disabled"), stderr);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("main --firmware refuses an image that is not 64 or 128 KiB, in one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const rom = `${dir}/small.bin`;
    await Deno.writeFile(rom, new Uint8Array(1000));
    const out = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", MAIN, `--firmware=${rom}`] })
      .output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 2);
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assert(stderr.includes("64 KiB or 128 KiB"), stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
