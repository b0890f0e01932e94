/**
 * Reads a classic pcap file (tcpdump's pcap-savefile(5) format) independently of the writer, so
 * tests can check what lib/backends/pcap_tap.ts wrote: the file header, then each record.
 */
export interface PcapFile {
  linkType: number;
  snapLen: number;
  records: { seconds: number; micros: number; originalLength: number; data: Uint8Array }[];
}

export function readPcap(bytes: Uint8Array): PcapFile {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 24) throw new Error("pcap: shorter than its header");
  const magic = v.getUint32(0, true);
  if (magic !== 0xA1B2C3D4) throw new Error(`pcap: bad magic 0x${magic.toString(16)}`);
  if (v.getUint16(4, true) !== 2 || v.getUint16(6, true) !== 4) throw new Error("pcap: not version 2.4");
  const out: PcapFile = { snapLen: v.getUint32(16, true), linkType: v.getUint32(20, true), records: [] };
  let at = 24;
  while (at < bytes.length) {
    if (at + 16 > bytes.length) throw new Error(`pcap: truncated record header at ${at}`);
    const incl = v.getUint32(at + 8, true);
    const orig = v.getUint32(at + 12, true);
    if (incl > orig || incl > out.snapLen || at + 16 + incl > bytes.length) {
      throw new Error(`pcap: bad record lengths at ${at}`);
    }
    const micros = v.getUint32(at + 4, true);
    if (micros >= 1e6) throw new Error(`pcap: bad microseconds at ${at}`);
    out.records.push({
      seconds: v.getUint32(at, true),
      micros,
      originalLength: orig,
      data: bytes.slice(at + 16, at + 16 + incl),
    });
    at += 16 + incl;
  }
  return out;
}
