; A 64 KiB "ROM" for tests/x86/system/real_mode_test.ts, placed at physical 0xF0000: from the
; reset vector through segment arithmetic, 16-bit addressing modes, far CALL/RET, INT n through
; the IVT with IRET, then into protected mode (LGDT, CR0.PE, far jump to 32-bit code), a 16-bit
; protected-mode code segment and back. Results are words/dwords at physical R + 4 * index.

bits 16
org 0

ROM_BASE equ 0xF0000
R        equ 0x2000             ; results, physical
RSEG     equ R >> 4             ; ES while in real mode: ES:4*i is result i

%macro checkpoint 1
  mov al, %1
  out 0xE9, al
%endmacro

start:
  mov ax, RSEG
  mov es, ax
  mov [es:0 * 4], edx           ; 0: EDX at reset (the processor signature)
  mov [es:1 * 4], cs            ; 1: CS after the reset vector's far jump
  cli
  xor ax, ax
  mov ss, ax
  mov sp, 0x7000
  checkpoint 'R'

  ; ---- Segment arithmetic: 1234:0010 and 1235:0000 are the same byte (0x12350) ----
  mov ax, 0x1234
  mov ds, ax
  mov word [0x0010], 0xBEEF
  mov ax, 0x1235
  mov ds, ax
  mov ax, [0x0000]
  mov [es:2 * 4], ax            ; 2: 0xBEEF read back through the other segment

  ; ---- 16-bit addressing modes: DS = 0x3000, SS = 0x4000 ----
  mov ax, 0x3000
  mov ds, ax
  mov ax, 0x4000
  mov ss, ax
  mov bx, 0x0100
  mov si, 0x0020
  mov di, 0x0040
  mov bp, 0x0200
  mov word [bx + si], 0x1111        ; DS:0120
  mov word [bx + di + 4], 0x2222    ; DS:0144
  mov word [bp + si], 0x3333        ; SS:0220
  mov word [bp + di - 2], 0x4444    ; SS:023E
  mov word [si], 0x5555             ; DS:0020
  mov word [di + 0x10], 0x6666      ; DS:0050
  mov word [bp], 0x7777             ; SS:0200
  mov word [bx], 0x8888             ; DS:0100
  mov word [0x0400], 0x9999         ; DS:0400
  mov word [ds:bp + 0x10], 0xBBBB   ; DS:0210 (override of BP's default SS)
  mov si, 0xFFF0
  mov word [bx + si + 0x20], 0xAAAA ; (0100 + FFF0 + 20) mod 64K = DS:0110
  mov eax, 8
  mov word [eax * 4 + 0x10], 0xCCCC ; 32-bit addressing (67h): DS:0030
  xor ax, ax
  mov ss, ax

  ; ---- Far CALL/RET, direct and through a memory pointer to an aliased segment ----
  mov [es:7 * 4], sp
  call 0xF000:far_proc
far_ret_point:
  call far [cs:alias_ptr]
  mov [es:26 * 4], sp           ; 26: SP after both returns (= 7)
  checkpoint 'F'

  ; ---- INT 42h through the IVT; IRET restores FLAGS ----
  xor ax, ax
  mov ds, ax
  mov word [0x42 * 4], int42
  mov word [0x42 * 4 + 2], 0xF000
  push word 0x0203              ; IF, CF
  popf
  int 0x42
int42_ret:
  pushf
  pop ax
  mov [es:12 * 4], ax           ; 12: FLAGS after IRET
  mov [es:13 * 4], bx           ; 13: what the handler left in BX
  cli
  checkpoint 'I'

  ; ---- Protected mode ----
  lgdt [cs:gdtr]
  mov eax, cr0
  or al, 1
  mov cr0, eax
  jmp dword 0x08:(pm32 + ROM_BASE)

far_proc:
  mov bp, sp
  mov ax, cs
  mov [es:4 * 4], ax            ; 4: CS inside (F000)
  mov ax, [bp]
  mov [es:5 * 4], ax            ; 5: pushed IP
  mov ax, [bp + 2]
  mov [es:6 * 4], ax            ; 6: pushed CS
  retf

int42:
  pushf
  pop ax
  mov [es:8 * 4], ax            ; 8: FLAGS inside the handler (IF and TF clear)
  mov bp, sp
  mov ax, [bp]
  mov [es:9 * 4], ax            ; 9: pushed IP
  mov ax, [bp + 2]
  mov [es:10 * 4], ax           ; 10: pushed CS
  mov ax, [bp + 4]
  mov [es:11 * 4], ax           ; 11: pushed FLAGS
  mov bx, 0x4242
  iret

alias_ptr:
  dw alias_proc - 0x1000, 0xF100    ; F100:xxxx is the same ROM byte as F000:xxxx+1000h

align 8
gdt:
  dq 0
  dw 0xFFFF, 0x0000
  db 0x00, 0x9A, 0xCF, 0x00     ; 0x08: 32-bit code, base 0, 4 GiB
  dw 0xFFFF, 0x0000
  db 0x00, 0x92, 0xCF, 0x00     ; 0x10: data, base 0, 4 GiB
  dw 0xFFFF, 0x0000
  db 0x0F, 0x9A, 0x00, 0x00     ; 0x18: 16-bit code, base 0xF0000, 64 KiB
gdt_end:
gdtr:
  dw gdt_end - gdt - 1
  dd gdt + ROM_BASE

bits 32
pm32:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov esp, 0x8000
  mov eax, cr0
  mov [R + 14 * 4], eax         ; 14: CR0
  xor eax, eax
  mov ax, cs
  mov [R + 15 * 4], eax         ; 15: CS (0x08)
  push dword 0x12345678
  pop ebx
  mov [R + 16 * 4], ebx         ; 16: popped value
  mov [R + 17 * 4], esp         ; 17: ESP back at 0x8000
  checkpoint 'P'
  jmp 0x18:pm16

bits 16
pm16:
  xor eax, eax
  mov ax, cs
  mov [R + 18 * 4], eax         ; 18: CS (0x18)
  mov ebx, esp
  push ax                       ; 16-bit operand size: ESP - 2
  sub ebx, esp
  mov [R + 19 * 4], ebx         ; 19: 2
  pop ax
  call pm16_fn
pm16_ret:
  mov [R + 20 * 4], ax          ; 20: the return IP pm16_fn saw
  checkpoint '6'
  jmp dword 0x08:(pm32_back + ROM_BASE)

pm16_fn:
  mov bp, sp
  mov ax, [bp]
  ret

bits 32
pm32_back:
  mov dword [R + 21 * 4], 0xB0B0CAFE    ; 21: back in 32-bit code
  checkpoint 'B'
  hlt

bits 16
  times 0x1100 - ($ - $$) db 0xFF
alias_proc:                     ; at ROM offset 0x1100: called as F100:0100
  mov ax, cs
  mov [es:22 * 4], ax           ; 22: CS inside (F100)
  mov bp, sp
  mov ax, [bp]
  mov [es:23 * 4], ax           ; 23: pushed IP
  mov ax, [bp + 2]
  mov [es:24 * 4], ax           ; 24: pushed CS
  retf

  times 0xFFF0 - ($ - $$) db 0xFF
reset_vector:
  jmp 0xF000:start
  times 0x10000 - ($ - $$) db 0xFF
