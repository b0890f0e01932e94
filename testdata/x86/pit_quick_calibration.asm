; A TSC calibration against PIT channel 2 in the manner of Linux's quick_pit_calibrate (our own
; code, same method): channel 2 in mode 0 counts down from 0xFFFF with the gate opened through port
; 0x61; for each successive value of the counter's MSB, poll until it changes, noting the TSC.
; It needs at least 6 polls per MSB step, and succeeds once the uncertainty of the two end readings
; (d1 + d2, each spanning about two polls) falls below 1/2048 of the TSC delta, within 233 steps.
; Results (dwords at RESULT): steps, d1, d2, delta, polls in the first step, verdict
; (1 = calibrated, 2 = a step was missed, 3 = never precise enough, 4 = the first step was missed).
bits 32
org 0x10000
RESULT equ 0x2000
start:
  mov esp, 0x90000
  in al, 0x61
  and al, ~2
  or al, 1
  out 0x61, al
  mov al, 0xb0                  ; channel 2, LSB then MSB, mode 0, binary
  out 0x43, al
  mov al, 0xff
  out 0x42, al
  out 0x42, al
  in al, 0x42                   ; one read of the counter lets the count start
  in al, 0x42
  mov bl, 0xff
  call expect_msb
  mov [RESULT + 16], ecx
  mov [RESULT + 4], esi
  cmp ecx, 5
  jle .missed_first
  mov ebp, edi                  ; TSC at the end of the first step
  mov edx, 1
.step:
  mov [RESULT], edx
  mov bl, 0xff
  sub bl, dl
  push edx
  call expect_msb
  pop edx
  mov [RESULT + 8], esi
  cmp ecx, 5
  jle .missed
  mov eax, edi
  sub eax, ebp
  mov [RESULT + 12], eax
  mov ebx, [RESULT + 4]
  add ebx, esi
  shr eax, 11
  cmp ebx, eax
  jb .calibrated
  inc edx
  cmp edx, 233
  jbe .step
  mov dword [RESULT + 20], 3
  jmp .end
.calibrated:
  mov dword [RESULT + 20], 1
  jmp .end
.missed_first:
  mov dword [RESULT + 20], 4
  jmp .end
.missed:
  mov dword [RESULT + 20], 2
.end:
  cli
  hlt

; Polls while the MSB equals BL: EDI = the TSC at the last matching poll, ESI = TSC now minus the
; TSC at the poll before it, ECX = matching polls.
expect_msb:
  xor ecx, ecx
  xor edi, edi
  xor esi, esi
.poll:
  in al, 0x42
  in al, 0x42
  cmp al, bl
  jne .changed
  mov esi, edi
  rdtsc
  mov edi, eax
  inc ecx
  cmp ecx, 50000
  jb .poll
.changed:
  rdtsc
  sub eax, esi
  mov esi, eax
  ret
