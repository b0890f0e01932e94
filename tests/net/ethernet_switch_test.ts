/** Tests for EthernetSwitch: learning, unicast to the owner, flooding, bounded table, forgetting a port. */
import { assertEquals } from "../assert.ts";
import { EthernetSwitch, MAX_LEARNED_MACS, TO_ALL, TO_NOWHERE } from "../../lib/net/ethernet_switch.ts";

function frame(dst: number[], src: number[]): Uint8Array {
  const f = new Uint8Array(60);
  f.set(dst, 0);
  f.set(src, 6);
  return f;
}
const A = [2, 0, 0, 0, 0, 1];
const B = [2, 0, 0, 0, 0, 2];
const BCAST = [255, 255, 255, 255, 255, 255];

Deno.test("EthernetSwitch floods unknown and broadcast destinations, then unicasts to the learned port", () => {
  const sw = new EthernetSwitch();
  assertEquals(sw.forward(frame(B, A), 1), TO_ALL);
  assertEquals(sw.forward(frame(BCAST, B), 2), TO_ALL);
  assertEquals(sw.forward(frame(A, B), 2), 1);
  assertEquals(sw.forward(frame(B, A), 1), 2);
  assertEquals(sw.forward(frame(A, A), 1), TO_NOWHERE, "destination on the incoming port");
  assertEquals(sw.forward(new Uint8Array(13), 1), TO_NOWHERE, "runt");
  // A multicast source is not learned.
  sw.forward(frame(A, [3, 0, 0, 0, 0, 9]), 3);
  assertEquals(sw.forward(frame([3, 0, 0, 0, 0, 9], A), 1), TO_ALL);
  sw.forgetPort(2);
  assertEquals(sw.forward(frame(B, A), 1), TO_ALL);
  // A station that moves is relearned.
  sw.forward(frame(BCAST, A), 4);
  assertEquals(sw.forward(frame(A, B), 2), 4);
});

Deno.test("EthernetSwitch's table stays bounded under a flood of source addresses", () => {
  const sw = new EthernetSwitch();
  for (let i = 0; i < MAX_LEARNED_MACS * 3; i++) {
    sw.forward(frame(BCAST, [2, 0, 0, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF]), 1);
  }
  assertEquals(sw.size <= MAX_LEARNED_MACS, true);
});
