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
