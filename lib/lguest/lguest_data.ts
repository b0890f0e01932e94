/**
 * `struct lguest_data`, the page the Guest shares with the host (Linux 4.9 include/linux/lguest.h,
 * LGUEST-ABI section 2): field offsets, identical with and without PAE. The host reaches it only by
 * guest-physical address through GuestMemory's checked accessors.
 */

export const LGUEST_DATA = Object.freeze({
  irq_enabled: 0x000,
  blocked_interrupts: 0x004,
  cr2: 0x008,
  time_tv_sec: 0x00C,
  time_tv_nsec: 0x010,
  irq_pending: 0x014,
  hcall_status: 0x018,
  hcalls: 0x058,
  reserve_mem: 0x558,
  tsc_khz: 0x55C,
  noirq_iret: 0x560,
  kernel_address: 0x564,
  syscall_vec: 0x568,
});

/** sizeof(struct lguest_data) on i386. */
export const LGUEST_DATA_SIZE = 0x56C;
/** One hcall_args slot: arg0..arg4 (eax, ebx, ecx, edx, esi). */
export const HCALL_ARGS_SIZE = 20;
/** X86_EFLAGS_IF: the only bit of irq_enabled the Guest and this host test. */
export const X86_EFLAGS_IF = 0x200;
/** The only system-call vector a 4.x Guest asks for (IA32_SYSCALL_VECTOR). */
export const SYSCALL_VECTOR = 0x80;
