/**
 * lguest Guests through the command as a user runs it (main.ts in a subprocess): a kernel with
 * lguest's entry boots as an lguest Guest (ELF vmlinux, and a bzImage through the host-side
 * decompression fast path), `--pc` and `--lguest` force the choice and `--verbose` says why, the
 * early console reaches stdout, and SHUTDOWN's reasons and rule violations give lguest's exit codes.
 */
import { assert, assertEquals } from "../assert.ts";

function assertStringIncludes(actual: string, expected: string): void {
  assert(actual.includes(expected), `expected to find ${JSON.stringify(expected)} in:\n${actual}`);
}
import { makeBzImage, makeElf32 } from "../launcher/kernel_fixtures.ts";
import { assembleGuest, lguestTest } from "./lguest_guest.ts";
import { assertRestored, tmuxAvailable, TmuxLauncher } from "../boot/tmux_launcher.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function lguest(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The test Guest as an ELF vmlinux (one PT_LOAD at its physical address, entry at its start). */
function guestElf(body: string): Uint8Array {
  const { bytes, symbols } = assembleGuest(body);
  const base = symbols.get("image_start")!;
  return makeElf32({ entry: base, segments: [{ vaddr: base, paddr: base, data: bytes }] });
}

async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A bzImage whose payload (payload_offset/payload_length) is the gzipped ELF. */
async function guestBzImage(body: string): Promise<Uint8Array> {
  const payload = await gzip(guestElf(body));
  const padded = new Uint8Array(Math.ceil(payload.length / 16) * 16);
  padded.set(payload);
  const image = makeBzImage({ payload: padded, version: 0x020A });
  const v = new DataView(image.buffer, image.byteOffset);
  v.setUint32(0x248, 0, true);
  v.setUint32(0x24C, payload.length, true);
  return image;
}

const HELLO = `
test_main:
  mov ebx, hello
  call early_puts
  poweroff
hello: db "hello from an lguest guest", 10, 0
`;

async function withFile(bytes: Uint8Array, fn: (path: string) => Promise<void>): Promise<void> {
  const path = await Deno.makeTempFile({ prefix: "lguest_kernel_" });
  try {
    await Deno.writeFile(path, bytes);
    await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

lguestTest("main boots an ELF with lguest_entry as an lguest Guest and exits 0 on power-off", async () => {
  await withFile(guestElf(HELLO), async (path) => {
    const r = await lguest("--verbose", "--deterministic", "64", path);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, "hello from an lguest guest");
    assertStringIncludes(r.stderr, "as an lguest Guest (non-PAE page tables): it contains lguest_entry's");
    assertStringIncludes(r.stderr, "the guest powered off: Power down");
  });
});

lguestTest("main boots a bzImage's host-decompressed lguest kernel the same way", async () => {
  await withFile(await guestBzImage(HELLO), async (path) => {
    const r = await lguest("--verbose", "64", path);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, "hello from an lguest guest");
    assertStringIncludes(r.stderr, "as an lguest Guest");
  });
});

lguestTest("--pc boots an lguest kernel as a PC, --lguest forces it the other way", async () => {
  await withFile(guestElf(HELLO), async (path) => {
    const pc = await lguest("--verbose", "--pc", "64", path);
    assertStringIncludes(pc.stderr, "as a PC: --pc");
    assert(pc.code !== 0, "int $0x1F on a PC with no IDT cannot power off");
    const both = await lguest("--pc", "--lguest", "64", path);
    assertEquals(both.code, 2);
    assertStringIncludes(both.stderr, "contradict");
  });
  // Without lguest_entry's code the detection says no; --lguest boots it anyway.
  const plain = makeElf32({
    entry: 0x100000,
    segments: [{ vaddr: 0x100000, paddr: 0x100000, data: new Uint8Array([0xB8, 2, 0, 0, 0, 0xCD, 0x1F]) }],
  });
  await withFile(plain, async (path) => {
    const r = await lguest("--verbose", "--lguest", "64", path);
    assertStringIncludes(r.stderr, "--lguest, although no lguest_entry code");
    assertStringIncludes(r.stderr, "hypercall 2 before INIT");
    assertEquals(r.code, 1);
  });
});

lguestTest("main: a panic prints its message and exits 1; a restart with --no-reboot exits 0", async () => {
  const panic = `
test_main:
  shutdown why, 1
why: db "Kernel panic - not syncing: Attempted to kill init!", 0
  times 128 db 0
`;
  await withFile(guestElf(panic), async (path) => {
    const r = await lguest("64", path);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "Kernel panic - not syncing: Attempted to kill init!");
  });
  const restart = `
test_main:
  shutdown why, 2
why: db "Restarting system", 0
  times 128 db 0
`;
  await withFile(guestElf(restart), async (path) => {
    const r = await lguest("--no-reboot", "64", path);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stderr, "Restarting system");
  });
});

lguestTest("main: a Guest breaking lguest's rules stops with lguest's reason and exit 1", async () => {
  await withFile(guestElf(`test_main:\n  hcall 17\n`), async (path) => {
    const r = await lguest("64", path);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "Bad hypercall 17");
  });
});

lguestTest("kill -USR2 prints the lguest state: hypercall counts, IRQs, the clock event", async () => {
  const idle = `
test_main:
  mov ebx, ready
  call early_puts
  mov dword [LD_blocked], 0
  hcall LHCALL_SET_CLOCKEVENT, 3000000000
  hcall LHCALL_HALT
  jmp test_main
ready: db "halting", 10, 0
`;
  await withFile(guestElf(idle), async (path) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN, "64", path],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.getReader();
    let out = "";
    while (!out.includes("halting")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    child.kill("SIGUSR2");
    const errReader = child.stderr.getReader();
    let err = "";
    while (!err.includes("clock event")) {
      const { value, done } = await errReader.read();
      if (done) break;
      err += new TextDecoder().decode(value);
    }
    child.kill("SIGKILL");
    reader.releaseLock();
    errReader.releaseLock();
    await child.stdout.cancel();
    await child.stderr.cancel();
    await child.status;
    assertStringIncludes(err, "lguest non-PAE guest: hypercalls LGUEST_INIT=1");
    assertStringIncludes(err, "SET_CLOCKEVENT=1 HALT=1");
    assertStringIncludes(err, "blocked_interrupts=0x0");
    assertStringIncludes(err, "halted=true");
  });
});

/**
 * A Guest that counts its boots on a --block disk (byte 0 of sector 0), through a virtio-blk driver
 * that reaches 00:02.0's registers through the VIRTIO_PCI_CAP_PCI_CFG window and polls the used
 * ring: each boot checks that RAM is fresh (a mark it leaves at 31 MiB is gone) and that the device
 * was reset, prints its number, then restarts while the count is below 3 and powers off at 3.
 */
const RESTART_COUNTER = `
%define BLK_DEV 0x80001000     ; conf1 address of 00:02.0: the first --block, after the console
%define FRESH_MARK 0x1F00000
test_main:
  mov dword [LD_blocked], 0xFFFFFFFF   ; no interrupts: the driver polls
  cmp dword [FRESH_MARK], 0
  jne fail_ram
  mov dword [FRESH_MARK], 0x600DB007
  mov eax, BLK_DEV
  call pci_read
  cmp eax, 0x10421AF4
  jne fail
  call blk_find_cap
  mov ebx, 0x14                 ; device_status before our reset: a fresh device says 0
  mov edi, 1
  call bar_read
  test eax, eax
  jnz fail_reset
  mov ecx, 0
  call set_status
  mov ecx, 3                    ; ACKNOWLEDGE | DRIVER
  call set_status
  mov ebx, 0x08                 ; driver_feature_select 1: VIRTIO_F_VERSION_1 (bit 32)
  mov ecx, 1
  mov edi, 4
  call bar_write
  mov ebx, 0x0C
  call bar_write
  mov ecx, 0x0B                 ; | FEATURES_OK
  call set_status
  mov ebx, 0x16                 ; queue_select 0, size 8, rings, enable
  xor ecx, ecx
  mov edi, 2
  call bar_write
  mov ebx, 0x18
  mov ecx, 8
  call bar_write
  mov edi, 4
  mov ebx, 0x20
  mov ecx, vq_desc
  call bar_write
  mov ebx, 0x28
  mov ecx, vq_avail
  call bar_write
  mov ebx, 0x30
  mov ecx, vq_used
  call bar_write
  mov ebx, 0x1C
  mov ecx, 1
  mov edi, 2
  call bar_write
  mov ecx, 0x0F                 ; | DRIVER_OK
  call set_status
  xor eax, eax                  ; VIRTIO_BLK_T_IN
  call blk_request
  movzx eax, byte [sector_buf]
  inc eax
  mov [sector_buf], al
  add al, '0'
  mov [boot_digit], al
  mov eax, 1                    ; VIRTIO_BLK_T_OUT
  call blk_request
  mov ebx, boot_msg
  call early_puts
  cmp byte [sector_buf], 3
  jae .off
  shutdown msg_restart, 2
.off:
  poweroff

; set_status: ECX = device_status
set_status:
  mov ebx, 0x14
  mov edi, 1
  jmp bar_write

; blk_find_cap: [blk_cap] = config offset of 00:02.0's VIRTIO_PCI_CAP_PCI_CFG capability
blk_find_cap:
  mov eax, BLK_DEV + 0x34
  call pci_read
  movzx esi, al
.next:
  test esi, esi
  jz fail
  lea eax, [esi + BLK_DEV]
  call pci_read
  mov ecx, eax
  shr ecx, 24
  cmp ecx, 5
  je .found
  shr eax, 8
  movzx esi, al
  jmp .next
.found:
  mov [blk_cap], esi
  ret

; cfg_window: point the PCI_CFG window at BAR0 offset EBX, EDI bytes wide
cfg_window:
  push ecx
  mov esi, [blk_cap]
  lea eax, [esi + BLK_DEV + 4]
  xor ecx, ecx
  call pci_write
  lea eax, [esi + BLK_DEV + 8]
  mov ecx, ebx
  call pci_write
  lea eax, [esi + BLK_DEV + 12]
  mov ecx, edi
  call pci_write
  pop ecx
  ret

; bar_write: BAR0[EBX] = ECX, EDI bytes
bar_write:
  pushad
  call cfg_window
  lea eax, [esi + BLK_DEV + 16]
  call pci_write
  popad
  ret

; bar_read: EAX = BAR0[EBX], EDI bytes
bar_read:
  push ecx
  push edx
  push esi
  call cfg_window
  lea eax, [esi + BLK_DEV + 16]
  call pci_read
  cmp edi, 4
  je .done
  movzx eax, al
.done:
  pop esi
  pop edx
  pop ecx
  ret

; blk_request: EAX = request type, sector 0, data in sector_buf; waits for the used ring
blk_request:
  pushad
  mov [req_type], eax
  mov byte [req_status], 0xFF
  mov word [vq_desc + 16 + 12], 3  ; NEXT | WRITE: the device fills sector_buf
  test eax, eax
  jz .queued
  mov word [vq_desc + 16 + 12], 1  ; NEXT: the device reads it
.queued:
  movzx eax, word [vq_avail + 2]
  and eax, 7
  mov word [vq_avail + 4 + eax * 2], 0
  inc word [vq_avail + 2]
  mov ebx, 0x3000               ; queue 0's doorbell (queue_notify_off 0)
  xor ecx, ecx
  mov edi, 2
  call bar_write
.wait:
  mov ax, [vq_used + 2]
  cmp ax, [vq_avail + 2]
  jne .wait
  cmp byte [req_status], 0
  jne fail
  popad
  ret

fail_ram:
  shutdown msg_ram, 1
fail_reset:
  shutdown msg_reset, 1
fail:
  shutdown msg_fail, 1

msg_restart: db "Restarting system", 0
  times 128 db 0
msg_ram: db "restart test: RAM was not fresh", 0
  times 128 db 0
msg_reset: db "restart test: the block device was not reset", 0
  times 128 db 0
msg_fail: db "restart test: virtio-blk request failed", 0
  times 128 db 0
boot_msg: db "restart-test boot "
boot_digit: db "?", 10, 0
align 4
blk_cap: dd 0
req_type: dd 0
req_reserved: dd 0
req_sector: dq 0
req_status: db 0
align 16
vq_desc:
  dq req_type
  dd 16
  dw 1, 1
  dq sector_buf
  dd 512
  dw 1, 2
  dq req_status
  dd 1
  dw 2, 0
  times 5 * 16 db 0
vq_avail:
  dw 1, 0                       ; VIRTQ_AVAIL_F_NO_INTERRUPT, idx
  times 8 dw 0
  dw 0
align 4
vq_used:
  dw 0, 0
  times 8 dd 0, 0
  dw 0
align 512
sector_buf: times 512 db 0
`;

lguestTest(
  "main restarts an lguest Guest afresh on SHUTDOWN(RESTART), twice, then exits 0 on power-off",
  async () => {
    await withFile(guestElf(RESTART_COUNTER), async (path) => {
      const disk = await Deno.makeTempFile({ prefix: "lguest_restart_disk_" });
      try {
        await Deno.writeFile(disk, new Uint8Array(64 * 1024));
        // Piped stdin that stays open: the terminal outlives each boot.
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "--quiet", MAIN, "--verbose", `--block=${disk}`, "64", path],
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
          env: { NO_COLOR: "1" },
        }).spawn();
        const out = await child.output();
        const stdout = new TextDecoder().decode(out.stdout), stderr = new TextDecoder().decode(out.stderr);
        assertEquals(out.code, 0, stderr);
        assertEquals(stdout.match(/restart-test boot \d/g), [
          "restart-test boot 1",
          "restart-test boot 2",
          "restart-test boot 3",
        ]);
        assertEquals(stderr.match(/starting it again/g)?.length, 2, stderr);
        assertStringIncludes(stderr, "the guest restarted: Restarting system");
        assertEquals((await Deno.readFile(disk))[0], 3);
        // --no-reboot: the first restart ends the launcher.
        await Deno.writeFile(disk, new Uint8Array(64 * 1024));
        const once = await lguest("--no-reboot", `--block=${disk}`, "64", path);
        assertEquals(once.code, 0, once.stderr);
        assertEquals(once.stdout.match(/restart-test boot \d/g), ["restart-test boot 1"]);
        assertStringIncludes(once.stderr, "guest rebooted: the guest restarted: Restarting system");
        assertEquals((await Deno.readFile(disk))[0], 1);
      } finally {
        await Deno.remove(disk);
      }
    });
  },
);

lguestTest(
  "main on a tmux terminal restarts an lguest Guest twice, then exits 0 with the terminal restored",
  async () => {
    if (!tmuxAvailable()) {
      console.warn("tmux is not installed: the terminal half of the lguest restart test is skipped");
      return;
    }
    await withFile(guestElf(RESTART_COUNTER), async (path) => {
      const dir = await Deno.makeTempDir();
      const t = new TmuxLauncher(dir);
      try {
        await Deno.writeFile(`${dir}/disk`, new Uint8Array(64 * 1024));
        t.start([`--block=${dir}/disk`, "64", path]);
        const code = await t.exitCode(120_000);
        const stderr = await Deno.readTextFile(`${dir}/stderr`);
        assertEquals(code, 0, `${stderr}\n${t.screen()}`);
        assertEquals(t.screen().match(/restart-test boot \d/g)?.length, 3, t.screen());
        assertEquals((await Deno.readFile(`${dir}/disk`))[0], 3);
        await assertRestored(dir);
      } finally {
        t.kill();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    });
  },
);

lguestTest(
  "main: a byte an lguest Guest writes to the exit-status port is the exit code at power-off",
  async () => {
    const body = `
test_main:
  mov al, 7
  out 0xF4, al                  ; #GP(0) at CPL 1: emulated, as /dev/port's outb in lguest_run=
  mov al, 9
  out 0x80, al                  ; any other port: dropped, as lguest's launcher did
  poweroff
`;
    await withFile(guestElf(body), async (path) => {
      const r = await lguest("--verbose", "64", path);
      assertEquals(r.code, 7, r.stderr);
      assertStringIncludes(r.stderr, "guest exit status 7");
    });
  },
);
