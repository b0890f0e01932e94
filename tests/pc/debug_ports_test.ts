/** POST codes on 0x80 and the Bochs/QEMU debug console on 0xE9. */
import { assertEquals } from "../assert.ts";
import { PortBus } from "../../lib/machine/bus.ts";
import { DebugPorts } from "../../lib/pc/debug_ports.ts";
import { setLogSink, setVerbose } from "../../lib/support/log.ts";

Deno.test("DebugPorts keeps the last POST code and logs only changes under --verbose", () => {
  const lines: string[] = [];
  const oldSink = setLogSink((line) => lines.push(line));
  setVerbose(true);
  try {
    const ports = new PortBus();
    const debugPorts = new DebugPorts({ write: () => {} });
    debugPorts.register(ports);
    ports.write(0x80, 1, 0x12);
    ports.write(0x80, 1, 0x12); // Linux's outb_p() I/O delay writes here constantly
    ports.write(0x80, 1, 0x34);
    assertEquals(debugPorts.lastPostCode, 0x34);
    assertEquals(lines, ["lguest: POST code 0x12", "lguest: POST code 0x34"]);
    assertEquals(ports.read(0x80, 1), 0xFF);
  } finally {
    setVerbose(false);
    setLogSink(oldSink);
  }
});

Deno.test("DebugPorts passes debug-console bytes to the sink a line at a time; 0xE9 reads 0xE9", () => {
  const ports = new PortBus();
  const chunks: string[] = [];
  const decoder = new TextDecoder();
  const debugPorts = new DebugPorts({ write: (bytes) => chunks.push(decoder.decode(bytes)) });
  debugPorts.register(ports);
  assertEquals(ports.read(0xE9, 1), 0xE9);
  for (const byte of new TextEncoder().encode("hello\nworld")) ports.write(0xE9, 1, byte);
  assertEquals(chunks, ["hello\n"]);
  debugPorts.flush();
  assertEquals(chunks, ["hello\n", "world"]);
});

Deno.test("DebugPorts default sink logs debug-console lines to stderr via the log", () => {
  const lines: string[] = [];
  const oldSink = setLogSink((line) => lines.push(line));
  try {
    const ports = new PortBus();
    new DebugPorts().register(ports);
    for (const byte of new TextEncoder().encode("early boot\n")) ports.write(0xE9, 1, byte);
    assertEquals(lines, ["lguest: debugcon: early boot"]);
  } finally {
    setLogSink(oldSink);
  }
});
