/**
 * Firmware ROMs for `--firmware`: a 64 or 128 KiB image (a BIOS like SeaBIOS, or a test ROM) that the
 * CPU runs from the reset vector 0xFFFFFFF0, mapped at the top of the 4 GiB space and, as on a PC,
 * mirrored just below 1 MiB. Only checks and places the image; the Machine maps it read-only.
 */

import { LaunchError } from "../support/errors.ts";

/** Sizes a PC BIOS image comes in. */
export const FIRMWARE_SIZES = [64 * 1024, 128 * 1024];

/** Where a checked ROM goes. */
export interface FirmwareImage {
  rom: Uint8Array;
  /** Base of the copy that ends at 4 GiB, holding the reset vector at 0xFFFFFFF0. */
  highPhysAddr: number;
  /** Base of the legacy copy that ends at 1 MiB (0xF0000 for 64 KiB, 0xE0000 for 128 KiB). */
  lowPhysAddr: number;
}

/** Checks `rom` (the contents of `fileName`) and says where to map it. */
export function checkFirmwareImage(rom: Uint8Array, fileName: string): FirmwareImage {
  if (!FIRMWARE_SIZES.includes(rom.length)) {
    throw new LaunchError(
      `Cannot load firmware "${fileName}": it is ${rom.length} bytes; a firmware ROM must be 64 KiB or 128 KiB`,
    );
  }
  return { rom, highPhysAddr: 0x1_0000_0000 - rom.length, lowPhysAddr: 0x10_0000 - rom.length };
}
