/**
 * Tests for tools/v86_runner.ts's pure parts (no v86 boot here: v86 is not a dependency of the tests):
 * when a run ends, from the serial console's text, and the one-line message when seabios is missing.
 */

import { assertEquals } from "../assert.ts";
import { guestEnd, SEABIOS, v86Problem, VGA_BIOS } from "../../tools/v86_runner.ts";

Deno.test("guestEnd: the reference guest's exit status, a power-off, halt or panic, or still running", () => {
  assertEquals(guestEnd("M2 69.84\r\nLGUEST-TS-EXIT 0\r\n"), 0);
  assertEquals(guestEnd("sh: syntax error\r\nLGUEST-TS-EXIT 2\r\n"), 2);
  assertEquals(guestEnd("[   70.1] reboot: Power down\r\n"), 1);
  assertEquals(guestEnd("[    3.2] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n"), 1);
  assertEquals(guestEnd("LGUEST-TS-READY 6.1.0-57-686\r\nM0 35.15\r\n"), undefined);
});

Deno.test("v86Problem names the missing BIOS image and the package that installs it", () => {
  assertEquals(v86Problem(() => true), "");
  assertEquals(v86Problem(() => false), `v86: ${SEABIOS} is missing (apt-get install seabios)`);
  assertEquals(v86Problem((p) => p !== VGA_BIOS), `v86: ${VGA_BIOS} is missing (apt-get install seabios)`);
});
