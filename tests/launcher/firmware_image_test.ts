/**
 * Tests for lib/launcher/firmware_image.ts: 64 and 128 KiB ROMs are placed so that the reset vector
 * 0xFFFFFFF0 falls 16 bytes before their end; any other size is a one-line LaunchError.
 */

import { assertEquals, assertThrows } from "../assert.ts";
import { checkFirmwareImage } from "../../lib/launcher/firmware_image.ts";
import { LaunchError } from "../../lib/support/errors.ts";

Deno.test("checkFirmwareImage maps 64 and 128 KiB ROMs below 4 GiB and below 1 MiB", () => {
  const small = checkFirmwareImage(new Uint8Array(64 * 1024), "bios.bin");
  assertEquals([small.highPhysAddr, small.lowPhysAddr], [0xFFFF0000, 0xF0000]);
  const big = checkFirmwareImage(new Uint8Array(128 * 1024), "bios.bin");
  assertEquals([big.highPhysAddr, big.lowPhysAddr], [0xFFFE0000, 0xE0000]);
  assertEquals(0xFFFFFFF0 - big.highPhysAddr, big.rom.length - 16); // the reset vector's offset in the ROM
});

Deno.test("checkFirmwareImage refuses ROMs of other sizes", () => {
  assertThrows(
    () => checkFirmwareImage(new Uint8Array(1000), "x.rom"),
    (e: unknown) =>
      e instanceof LaunchError &&
      e.message ===
        'Cannot load firmware "x.rom": it is 1000 bytes; a firmware ROM must be 64 KiB or 128 KiB',
  );
});
