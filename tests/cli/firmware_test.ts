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

/**
 * A ROM that first checks the power-on state (issue #11): with interrupts enabled and nothing
 * programmed, no IRQ arrives and the 8254's channel 0 does not count; then it programs the 8259
 * (IRQ0 at vector 8) and channel 0, and the first IRQ0 arrives at vector 8.
 */
const POWER_ON_ROM = `
bits 16
org 0
%macro print 1
  mov si, %1
  call puts
%endmacro
start:
  xor ax, ax
  mov ds, ax
  mov ss, ax
  mov sp, 0x7000
  mov di, 0                     ; IVT: every vector to "unexpected" first
.ivt:
  mov word [di], unexpected
  mov word [di + 2], 0xF000
  add di, 4
  cmp di, 0x400
  jb .ivt
  mov word [8 * 4], irq0
  mov al, 0x00                  ; latch channel 0
  out 0x43, al
  in al, 0x40
  mov bl, al
  in al, 0x40
  mov bh, al
  sti
  mov dx, 128
.spin:
  mov cx, 0xFFFF
.inner:
  loop .inner
  dec dx
  jnz .spin
  cli
  mov al, 0x00
  out 0x43, al
  in al, 0x40
  mov cl, al
  in al, 0x40
  mov ch, al
  cmp bx, cx
  jne .counting
  print quiet
  ; Program the pair (ICW1-ICW4, IRQ0 at vector 8, everything but IRQ0 masked) and channel 0.
  mov al, 0x11
  out 0x20, al
  mov al, 0x08
  out 0x21, al
  mov al, 0x04
  out 0x21, al
  mov al, 0x01
  out 0x21, al
  mov al, 0xFE
  out 0x21, al
  mov al, 0x34                  ; channel 0, lo/hi, mode 2
  out 0x43, al
  mov al, 0xE8                  ; 1000 ticks
  out 0x40, al
  mov al, 0x03
  out 0x40, al
  sti
.wait:
  hlt
  jmp .wait
.counting:
  print counting
  cli
  hlt
irq0:
  print tick
  cli
  hlt
unexpected:
  print stray
  cli
  hlt
puts:
  push ds
  mov ax, 0xF000
  mov ds, ax
.next:
  lodsb
  test al, al
  jz .done
  out 0xE9, al
  jmp .next
.done:
  pop ds
  ret
quiet: db "quiet;", 0
counting: db "channel 0 counts before it is programmed", 10, 0
tick: db "irq0 at vector 8", 10, 0
stray: db "an interrupt before the 8259 was programmed", 10, 0
times 0xFFF0 - ($ - $$) db 0
  jmp 0xF000:start
times 0x10000 - ($ - $$) db 0
`;

Deno.test({
  name: "main --firmware starts with the 8259 pair uninitialized and the 8254 unprogrammed",
  ignore: nasmUnavailableReason() !== null,
  async fn() {
    const { bytes } = assemble(POWER_ON_ROM);
    const dir = await Deno.makeTempDir();
    try {
      const rom = `${dir}/rom.bin`;
      await Deno.writeFile(rom, bytes);
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, `--firmware=${rom}`, "--verbose", "--deterministic", "16"],
        stdin: "null",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 3, stderr);
      assert(stderr.includes("debugcon: quiet;irq0 at vector 8\n"), stderr);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const SPIN_ROM = `
bits 16
org 0
start:
  mov al, 'r'
  out 0xE9, al
  mov al, 10
  out 0xE9, al
.spin:
  inc cx
  jmp .spin
times 0xFFF0 - ($ - $$) db 0
  jmp 0xF000:start
times 0x10000 - ($ - $$) db 0
`;

Deno.test({
  name: "main --trace writes each instruction with its disassembly; kill -USR2 shows the code at EIP",
  ignore: nasmUnavailableReason() !== null || Deno.build.os === "windows",
  async fn() {
    const { bytes } = assemble(SPIN_ROM);
    const dir = await Deno.makeTempDir();
    try {
      const rom = `${dir}/rom.bin`, tracePath = `${dir}/trace.txt`;
      await Deno.writeFile(rom, bytes);
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, `--firmware=${rom}`, `--trace=${tracePath}`, "--verbose", "16"],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let stderr = "";
      let signalled = false;
      while (!stderr.includes("=> f000:")) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += value;
        if (!signalled && stderr.includes("debugcon: r")) {
          child.kill("SIGUSR2");
          signalled = true;
        }
      }
      child.kill("SIGTERM");
      await reader.cancel();
      await child.status;
      assert(/=> f000:0000000[0-9a-f] {2}[0-9a-f ]+ +(inc cx|jmp 0x[0-9a-f]+)/.test(stderr), stderr);
      const trace = await Deno.readTextFile(tracePath);
      const lines = trace.split("\n");
      assert(/^0 f000:0000fff0 jmp 0xf000:0x0 +eax=00000000 /.test(lines[0]), lines[0]);
      assert(lines[1].startsWith("1 f000:00000000 mov al, 0x72"), lines[1]);
      assert(lines.some((l) => l.includes(" out 0xe9, al ")), "the OUT is traced");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
