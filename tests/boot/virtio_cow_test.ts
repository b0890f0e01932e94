/**
 * Disks that are never harmed, end to end (issue #12), in two boots of the real Debian Guest:
 * boot 1 writes (dd conv=fsync, so FLUSH) to a `,snapshot` disk and to an `,overlay=` disk and
 * reads its writes back, then the launcher is killed with SIGKILL; both base images are
 * unchanged. Boot 2 opens the overlay again and finds the flushed pattern there.
 */
import { assert, assertEquals } from "../assert.ts";
import { guest, skipReason } from "../tools/guest_fixture.ts";
import { withGuest } from "./guest_process.ts";

const ignore = guest === undefined;
if (ignore) console.warn(`copy-on-write disk boot tests skipped: ${skipReason}`);

const FAST_ARGS = ["console=ttyS0", "cryptomgr.notests=1", "noisapnp"];
const BOOT_TIMEOUT_MS = 1_800_000; // generous: a loaded 2-core machine took 17 min to boot
/** Per command: a loaded machine runs the Guest 100 times slower than an idle one. */
const RUN_TIMEOUT_MS = 600_000;
const MiB = 1024 * 1024;

async function sha256(data: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function guestHash(output: string): string {
  const m = output.match(/\b([0-9a-f]{64})\s/);
  assert(m, `no sha256sum in: ${output}`);
  return m[1];
}

/** 40000 bytes of numbered lines, as the Guest's seq | sed | head -c makes them. */
const PATTERN_CMD = "seq 1 6000 | sed 's/^/lguest-cow-pattern-/' | head -c 40000 > /tmp/p";
function pattern(): Uint8Array {
  let s = "";
  for (let i = 1; s.length < 40000; i++) s += `lguest-cow-pattern-${i}\n`;
  return new TextEncoder().encode(s.slice(0, 40000));
}

Deno.test({
  name:
    "--block=FILE,snapshot and ,overlay=: the bases are never written, the overlay keeps flushed writes after SIGKILL",
  ignore,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "lguest-cow-boot-" });
    const snapBase = `${dir}/snap.img`;
    const ovlBase = `${dir}/base.img`;
    const overlay = `${dir}/base.ovl`;
    const snapData = new Uint8Array(MiB).fill(0x11);
    const baseData = new Uint8Array(MiB).fill(0x22);
    await Deno.writeFile(snapBase, snapData);
    await Deno.writeFile(ovlBase, baseData);
    const g = guest!;
    const tail = [`--initrd=${g.initrd}`, "256", g.vmlinux ?? g.kernel, ...FAST_ARGS];
    const want = await sha256(pattern());
    try {
      await withGuest(
        [`--block=${snapBase},snapshot`, `--block=${ovlBase},overlay=${overlay}`, ...tail],
        async (vm) => {
          await vm.waitFor(/\/ # /, BOOT_TIMEOUT_MS);
          const out = await vm.run(
            `${PATTERN_CMD}; for d in vda vdb; do dd if=/tmp/p of=/dev/$d bs=512 seek=128 conv=fsync,notrunc 2>/dev/null;` +
              " echo dd-$d=$?; done",
            RUN_TIMEOUT_MS,
          );
          assert(out.includes("dd-vda=0") && out.includes("dd-vdb=0"), out);
          // The Guest reads its own writes back from both (O_DIRECT: from the devices, not its page cache).
          for (const d of ["vda", "vdb"]) {
            const back = await vm.run(
              `dd if=/dev/${d} bs=512 skip=128 count=79 iflag=direct 2>/dev/null | head -c 40000 | sha256sum`,
              RUN_TIMEOUT_MS,
            );
            assertEquals(guestHash(back), want, `${d} read back`);
          }
          await vm.kill(); // SIGKILL: no clean close, no final flush
        },
      );
      assertEquals(
        await sha256(await Deno.readFile(snapBase)),
        await sha256(snapData),
        "snapshot base unchanged",
      );
      assertEquals(
        await sha256(await Deno.readFile(ovlBase)),
        await sha256(baseData),
        "overlay base unchanged",
      );
      await withGuest([`--block=${ovlBase},overlay=${overlay}`, ...tail], async (vm) => {
        await vm.waitFor(/\/ # /, BOOT_TIMEOUT_MS);
        const back = await vm.run(
          "dd if=/dev/vda bs=512 skip=128 count=79 2>/dev/null | head -c 40000 | sha256sum",
          RUN_TIMEOUT_MS,
        );
        assertEquals(
          guestHash(back),
          want,
          "the overlay kept the flushed pattern across SIGKILL and a new boot",
        );
        const rest = await vm.run("dd if=/dev/vda bs=512 count=128 2>/dev/null | sha256sum", RUN_TIMEOUT_MS);
        assertEquals(
          guestHash(rest),
          await sha256(baseData.subarray(0, 65536)),
          "unwritten sectors come from the base",
        );
        await vm.powerOff(RUN_TIMEOUT_MS);
      });
      assertEquals(await sha256(await Deno.readFile(ovlBase)), await sha256(baseData));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
