/**
 * The Internet checksum (RFC 1071), shared by virtio-net's offloads (lib/virtio/net_offload.ts) and
 * the user-mode network stack (lib/net/): a 16-bit ones' complement sum over big-endian words, and
 * the pseudo-header sum TCP and UDP over IPv4 start from (RFC 9293 §3.1, RFC 768).
 */

/**
 * The 16-bit ones' complement sum (RFC 1071) of bytes `start` to `end` of `data`, added to
 * `initial` (a partial sum, such as a pseudo-header's), folded to 16 bits and not complemented.
 * Bytes pair up from `start` as big-endian words; an odd last byte is padded with a zero.
 */
export function onesComplementSum(data: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  const lastPair = end - 1;
  // Without folding in the loop the sum stays an exact integer for any frame (2^53 is far away).
  for (; i < lastPair; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (i < end) sum += data[i] << 8;
  return fold(sum);
}

/** The Internet checksum (RFC 1071) of bytes `start` to `end`: the complement of their sum with `initial`. */
export function internetChecksum(data: Uint8Array, start: number, end: number, initial = 0): number {
  return ~onesComplementSum(data, start, end, initial) & 0xFFFF;
}

/** Folds the carries of a non-negative sum back in until it fits 16 bits (end-around carry). */
function fold(sum: number): number {
  while (sum > 0xFFFF) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/** The IPv4 pseudo-header's sum (source, destination, protocol, transport length), not complemented. */
export function ipv4PseudoHeaderSum(
  packet: Uint8Array,
  ipStart: number,
  protocol: number,
  transportLength: number,
): number {
  return onesComplementSum(packet, ipStart + 12, ipStart + 20, protocol + transportLength);
}
