/**
 * The table-driven disassembler (lib/x86/disassembler.ts) on code NASM assembled: 32- and 16-bit
 * default sizes, prefixes, far pointers, system registers, ENTER's two immediates and x87 escapes.
 */
import { assertEquals } from "../assert.ts";
import { disassembleAll } from "../../lib/x86/disassembler.ts";
import { assemble, nasmUnavailableReason } from "./system/asm.ts";

function texts(source: string, code32: boolean): string[] {
  const { bytes } = assemble(source);
  return disassembleAll(bytes, 0x1000, code32).map((d) => d.text);
}

Deno.test({
  name: "disassemble 32-bit code with the opcode table",
  ignore: nasmUnavailableReason() !== null,
  fn() {
    assertEquals(
      texts(
        `bits 32
org 0x1000
mov eax, 0x12345678
mov word [ebx+esi*4+0x10], 0x7
jmp 0x8:0x2000
enter 0x8, 0x4
mov cr0, eax
mov ss, ax
o16 push es
rep movsd
lock add dword [fs:edi], ecx
fld dword [eax]
jne 0x1000`,
        true,
      ),
      [
        "mov eax, 0x12345678",
        "mov word [ebx+esi*4+0x10], 0x7",
        "jmp 0x8:0x2000",
        "enter 0x8, 0x4",
        "mov cr0, eax",
        "mov ss, ax",
        "push es",
        "rep movsd",
        "lock add dword fs:[edi], ecx",
        "esc 0xd9/0, [eax]",
        "jne 0x1000",
      ],
    );
  },
});

Deno.test({
  name: "disassemble 16-bit code: operand and address size default to 16 bits",
  ignore: nasmUnavailableReason() !== null,
  fn() {
    assertEquals(
      texts(
        `bits 16
org 0x1000
mov ax, 0x1234
mov eax, [bx+si+0x4]
jmp 0xf000:0xe05b
out 0xe9, al
call 0x1000`,
        false,
      ),
      ["mov ax, 0x1234", "mov eax, dword [bx+si+0x4]", "jmp 0xf000:0xe05b", "out 0xe9, al", "call 0x1000"],
    );
  },
});
