/**
 * The page-table hypercalls keep the soft TLB (our shadow page table) exact, with and without PAE
 * (LGUEST-ABI 1): a PTE the Guest rewrites natively is seen only after SET_PTE or FLUSH_TLB, as
 * with lguest's shadow tables; FLUSH_TLB(0) keeps global (kernel) pages; SET_PGD and SET_PMD drop
 * the entries below a changed directory entry; NEW_PGTABLE switches address spaces.
 */
import { assertEquals } from "../assert.ts";
import { lguestTest, runGuest } from "./lguest_guest.ts";

/** Page-table geometry per mode: PTE size, and where the PTE for linear address 0x1800000 is. */
function body(pae: boolean): string {
  const pteSize = pae ? 8 : 4;
  // The window page: linear 0x1800000 (24 MiB) inside the identity map, remapped at will.
  return `
%define WIN 0x1800000
%define WIN_PTE (pt0 + (WIN >> 12) * ${pteSize})
%define WIN2 0x1801000
%define WIN2_PTE (pt0 + (WIN2 >> 12) * ${pteSize})
test_main:
  mov dword [page_a], 0xAAAA0001
  mov dword [page_b], 0xBBBB0002
  ; WIN -> page_a; read it so the TLB holds the translation
  mov dword [WIN_PTE], page_a + 0x67
  hcall LHCALL_SET_PTE, page_table, WIN, page_a + 0x67, 0
  result 0, [WIN]
  ; rewrite natively: the old translation is still in use until the host is told
  mov dword [WIN_PTE], page_b + 0x67
  result 1, [WIN]
  hcall LHCALL_SET_PTE, page_table, WIN, page_b + 0x67, 0
  result 2, [WIN]
  ; FLUSH_TLB(1) flushes everything
  mov dword [WIN_PTE], page_a + 0x67
  result 3, [WIN]
  hcall LHCALL_FLUSH_TLB, 1
  result 4, [WIN]
  ; a global page survives FLUSH_TLB(0), a non-global one does not
  mov dword [WIN_PTE], page_a + 0x167
  mov dword [WIN2_PTE], page_a + 0x67
  hcall LHCALL_FLUSH_TLB, 1
  mov eax, [WIN]
  mov eax, [WIN2]
  mov dword [WIN_PTE], page_b + 0x167
  mov dword [WIN2_PTE], page_b + 0x67
  hcall LHCALL_FLUSH_TLB, 0
  result 5, [WIN]
  result 6, [WIN2]
  hcall LHCALL_FLUSH_TLB, 1
  result 7, [WIN]
  ; NEW_PGTABLE: a second address space where WIN maps page_b; then back
  hcall LHCALL_NEW_PGTABLE, page_table2
  result 8, [WIN]
  hcall LHCALL_NEW_PGTABLE, page_table
  ${dirTest(pae)}
  poweroff

align 4096
page_a: times 4096 db 0
page_b: times 4096 db 0
page_c: times 4096 db 0
${secondTable(pae)}
`;
}

/** SET_PGD (and with PAE SET_PMD): a directory entry changed under a cached translation. */
function dirTest(pae: boolean): string {
  if (!pae) {
    // PDE 6 (24-28 MiB) -> a page table whose first entry maps page_c
    return `
  mov dword [page_table + 6 * 4], pt_alt + 0x67
  result 9, [WIN]                 ; still the old translation
  hcall LHCALL_SET_PGD, page_table, 6
  result 10, [WIN]
  hcall LHCALL_SET_PGD, page_table, 1024`;
  }
  return `
  mov dword [pmd + 12 * 8], pt_alt + 0x67   ; PMD entry 12 (24-26 MiB)
  result 9, [WIN]
  hcall LHCALL_SET_PMD, pmd, 12
  result 10, [WIN]
  ; SET_PGD on the PDPT (32-byte aligned, index < 4)
  mov dword [page_table], pmd + 1
  hcall LHCALL_SET_PGD, page_table, 0
  result 11, [0x1000]
  hcall LHCALL_SET_PGD, page_table, 4`;
}

function secondTable(pae: boolean): string {
  if (!pae) {
    return `
page_table2:
  %assign i 0
  %rep 6
    dd pt0 + i * 4096 + 0x67
    %assign i i + 1
  %endrep
  dd pt2 + 0x67
  dd pt0 + 7 * 4096 + 0x67
  times 4096 - 8 * 4 db 0
pt2:
  dd page_b + 0x67
  times 4096 - 4 db 0
pt_alt:
  dd page_c + 0x67
  times 4096 - 4 db 0`;
  }
  return `
page_table2:
  dd pmd2 + 1, 0
  times 4096 - 8 db 0
pmd2:
  %assign i 0
  %rep 12
    dd pt0 + i * 4096 + 0x67, 0
    %assign i i + 1
  %endrep
  dd pt2 + 0x67, 0
  %assign i 13
  %rep 3
    dd pt0 + i * 4096 + 0x67, 0
    %assign i i + 1
  %endrep
  times 4096 - 16 * 8 db 0
pt2:
  dd page_b + 0x67, 0
  times 4096 - 8 db 0
pt_alt:
  dd page_c + 0x67, 0
  times 4096 - 8 db 0`;
}

for (const pae of [false, true]) {
  lguestTest(`page-table hypercalls keep the soft TLB exact (${pae ? "PAE" : "non-PAE"})`, async () => {
    const g = await runGuest(body(pae), { pae });
    const A = 0xAAAA0001, B = 0xBBBB0002;
    assertEquals(
      [g.r(0), g.r(1), g.r(2), g.r(3), g.r(4)].map((v) => v.toString(16)),
      [A, A, B, B, A].map((v) => v.toString(16)),
      "SET_PTE and FLUSH_TLB(1)",
    );
    assertEquals([g.r(5), g.r(6), g.r(7)], [A, B, B], "FLUSH_TLB(0) keeps the global page only");
    assertEquals(g.r(8), B, "NEW_PGTABLE switched address spaces");
    assertEquals(g.r(9), B, "directory entry changed natively: old translation");
    assertEquals(g.r(10), 0, `after ${pae ? "SET_PMD" : "SET_PGD"}: page_c (zeroed)`);
    if (pae) {
      assertEquals(g.r(11) >>> 0, g.machine.mem.readU32(0x1000), "SET_PGD on the PDPT");
      assertEquals(g.result, { kind: "error", reason: "Attempt to set pgd 4/4" });
    } else {
      assertEquals(g.result, { kind: "error", reason: "Attempt to set pgd 1024/1024" });
    }
  });
}

lguestTest("NEW_PGTABLE outside RAM and SET_PTE into the switcher kill the guest", async () => {
  const cr3 = await runGuest(`test_main:\n  hcall LHCALL_NEW_PGTABLE, 0x8000000\n  poweroff\n`);
  assertEquals(cr3.result, { kind: "error", reason: "bad page table address 0x8000000" });
  const pte = await runGuest(
    `test_main:\n  hcall LHCALL_SET_PTE, page_table, 0xFFC01000, 0x67, 0\n  poweroff\n`,
  );
  assertEquals(pte.result, { kind: "error", reason: "attempt to set pte into Switcher pages" });
});
