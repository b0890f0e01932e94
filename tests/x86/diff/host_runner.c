/*
 * The host side of the differential test: runs each generated case natively as 32-bit user code.
 * Data regions are mapped at fixed addresses, the case's bytes are copied into a page of HLTs, all
 * eight GPRs and EFLAGS are loaded, and the case ends in a signal (HLT at CPL 3 is #GP) whose
 * ucontext gives the final registers, EFLAGS, EIP and the trap number. Formats: case_file.ts.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ucontext.h>
#include <unistd.h>

#define MAGIC_CASES 0x4344474Cu   /* "LGDC" */
#define MAGIC_RESULTS 0x5244474Cu /* "LGDR" */
#define MAX_REGIONS 4
#define MAX_CHANGES 4096

struct region {
  uint32_t base, size;
  uint8_t *mem;  /* the mapping */
  uint8_t *init; /* what the mapping held before this case ran */
  uint8_t *bg;   /* the background pattern every case starts from */
};

/* Read by lg_enter: eight GPRs in EAX..EDI order, EFLAGS, entry EIP. */
uint32_t lg_ctx[10];
static sigjmp_buf lg_jump;
static uint32_t out_regs[8], out_eflags, out_eip, out_trapno, out_err, out_signo;

extern void lg_enter(void);
__asm__(
    ".text\n"
    ".globl lg_enter\n"
    "lg_enter:\n"
    "  pushl lg_ctx+32\n"
    "  popfl\n"
    "  movl lg_ctx+0, %eax\n"
    "  movl lg_ctx+4, %ecx\n"
    "  movl lg_ctx+8, %edx\n"
    "  movl lg_ctx+12, %ebx\n"
    "  movl lg_ctx+20, %ebp\n"
    "  movl lg_ctx+24, %esi\n"
    "  movl lg_ctx+28, %edi\n"
    "  movl lg_ctx+16, %esp\n"
    "  jmp *lg_ctx+36\n");

static void on_signal(int signo, siginfo_t *si, void *ucv) {
  (void)si;
  ucontext_t *uc = ucv;
  greg_t *g = uc->uc_mcontext.gregs;
  out_regs[0] = g[REG_EAX];
  out_regs[1] = g[REG_ECX];
  out_regs[2] = g[REG_EDX];
  out_regs[3] = g[REG_EBX];
  out_regs[4] = g[REG_UESP];
  out_regs[5] = g[REG_EBP];
  out_regs[6] = g[REG_ESI];
  out_regs[7] = g[REG_EDI];
  out_eflags = g[REG_EFL];
  out_eip = g[REG_EIP];
  out_trapno = g[REG_TRAPNO];
  out_err = g[REG_ERR];
  out_signo = signo;
  siglongjmp(lg_jump, 1);
}

static void die(const char *msg) {
  fprintf(stderr, "host_runner: %s\n", msg);
  exit(2);
}

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) die("cannot open case file");
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc(*len);
  if (!buf || fread(buf, 1, *len, f) != *len) die("cannot read case file");
  fclose(f);
  return buf;
}

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static void *map_fixed(uint32_t base, uint32_t size, int prot) {
  void *p = mmap((void *)(uintptr_t)base, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED || (uint32_t)(uintptr_t)p != base) return NULL;
  return p;
}

static struct region regions[MAX_REGIONS];
static uint32_t n_regions;

static struct region *region_of(uint32_t addr, uint32_t len) {
  for (uint32_t i = 0; i < n_regions; i++) {
    struct region *r = &regions[i];
    if (addr >= r->base && len <= r->size && addr - r->base <= r->size - len) return r;
  }
  die("patch outside the data regions");
  return NULL;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--probe") == 0) {
    /* Can we map the low (16-bit addressable) region? vm.mmap_min_addr decides. */
    void *p = map_fixed(0x8000, 0x8000, PROT_READ | PROT_WRITE);
    printf("%d\n", p != NULL);
    return 0;
  }
  if (argc != 3) die("usage: host_runner CASES RESULTS | --probe");
  size_t len;
  uint8_t *buf = read_file(argv[1], &len);
  if (len < 24 || rd32(buf) != MAGIC_CASES) die("bad case file");
  uint32_t count = rd32(buf + 4), code_base = rd32(buf + 8), code_size = rd32(buf + 12);
  n_regions = rd32(buf + 16);
  if (n_regions > MAX_REGIONS) die("too many regions");
  size_t pos = 20;
  for (uint32_t i = 0; i < n_regions; i++) {
    struct region *r = &regions[i];
    r->base = rd32(buf + pos);
    r->size = rd32(buf + pos + 4);
    pos += 8;
    r->mem = map_fixed(r->base, r->size, PROT_READ | PROT_WRITE);
    if (!r->mem) die("cannot map a data region at its fixed address");
    r->bg = buf + pos;
    pos += r->size;
    r->init = malloc(r->size);
    memcpy(r->mem, r->bg, r->size);
    memcpy(r->init, r->bg, r->size);
  }
  uint8_t *code = map_fixed(code_base, code_size, PROT_READ | PROT_WRITE | PROT_EXEC);
  if (!code) die("cannot map the code region");
  memset(code, 0xF4, code_size);

  static uint8_t altstack[65536];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) die("sigaltstack failed");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  /* NODEFER: we leave the handler by siglongjmp without restoring the mask, saving two syscalls. */
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  int sigs[] = {SIGSEGV, SIGILL, SIGFPE, SIGTRAP, SIGBUS};
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
  alarm(600); /* a case that never stops is a generator bug; don't hang CI over it */

  FILE *out = fopen(argv[2], "wb");
  if (!out) die("cannot open result file");
  uint32_t hdr[2] = {MAGIC_RESULTS, count};
  fwrite(hdr, 4, 2, out);
  static uint32_t changes[MAX_CHANGES * 2];

  for (uint32_t c = 0; c < count; c++) {
    uint32_t entry_off = rd32(buf + pos) - code_base, code_len = buf[pos + 4];
    pos += 5;
    if (entry_off > code_size - code_len) die("code outside the code region");
    uint8_t *case_code = buf + pos;
    pos += code_len;
    for (int i = 0; i < 8; i++) lg_ctx[i] = rd32(buf + pos + 4 * i);
    lg_ctx[8] = rd32(buf + pos + 32);
    lg_ctx[9] = code_base + entry_off;
    pos += 36;
    uint32_t n_patches = rd32(buf + pos);
    pos += 4;
    size_t patches_pos = pos;
    for (uint32_t i = 0; i < n_patches; i++) {
      uint32_t addr = rd32(buf + pos), plen = buf[pos + 4];
      struct region *r = region_of(addr, plen);
      memcpy(r->mem + (addr - r->base), buf + pos + 5, plen);
      memcpy(r->init + (addr - r->base), buf + pos + 5, plen);
      pos += 5 + plen;
    }
    memcpy(code + entry_off, case_code, code_len);

    out_signo = 0;
    if (sigsetjmp(lg_jump, 0) == 0) lg_enter();

    /* Every changed byte, found 64 bytes at a time and put back to the background. */
    uint32_t n_changes = 0;
    for (uint32_t i = 0; i < n_regions; i++) {
      struct region *r = &regions[i];
      for (uint32_t o = 0; o < r->size; o += 64) {
        if (memcmp(r->mem + o, r->init + o, 64) == 0) continue;
        for (uint32_t b = o; b < o + 64; b++) {
          if (r->mem[b] != r->init[b] && n_changes < MAX_CHANGES) {
            changes[2 * n_changes] = r->base + b;
            changes[2 * n_changes + 1] = r->mem[b];
            n_changes++;
          }
        }
        memcpy(r->mem + o, r->bg + o, 64);
        memcpy(r->init + o, r->bg + o, 64);
      }
    }
    pos = patches_pos;
    for (uint32_t i = 0; i < n_patches; i++) {
      uint32_t addr = rd32(buf + pos), plen = buf[pos + 4];
      struct region *r = region_of(addr, plen);
      memcpy(r->mem + (addr - r->base), r->bg + (addr - r->base), plen);
      memcpy(r->init + (addr - r->base), r->bg + (addr - r->base), plen);
      pos += 5 + plen;
    }
    memset(code + entry_off, 0xF4, code_len);

    uint32_t rec[14];
    memcpy(rec, out_regs, 32);
    rec[8] = out_eflags;
    rec[9] = out_eip;
    rec[10] = out_trapno;
    rec[11] = out_err;
    rec[12] = out_signo;
    rec[13] = n_changes;
    fwrite(rec, 4, 14, out);
    fwrite(changes, 4, 2 * n_changes, out);
  }
  if (fclose(out) != 0) die("cannot write result file");
  return 0;
}
