/** The one seam onto an assertion library for tests (`node:assert/strict` until @std/assert is reachable). */
export {
  deepStrictEqual as assertEquals,
  ok as assert,
  rejects as assertRejects,
  throws as assertThrows,
} from "node:assert/strict";
