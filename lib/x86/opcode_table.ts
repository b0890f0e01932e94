/**
 * The i686 integer opcode map as data (STYLE rule 10): one row per instruction form, read by the
 * decoder (which opcodes take a ModRM byte and which immediates), the disassembler and the
 * differential-test generator. Operand notation follows the Intel SDM's opcode map (Vol. 2, App. A):
 * E = ModRM r/m, G = ModRM reg, M = memory-only r/m, R = register-only r/m, S = segment register in
 * ModRM reg, C/D = control/debug register, I = immediate, J = relative offset, O = moffs, A = far
 * pointer, Z = register in the low 3 opcode bits; sizes b (8), w (16), d (32), v (16/32 by operand
 * size), z (16/32 immediate), q (64), p (far pointer), a (BOUND pair). `Ibs` is a sign-extended imm8.
 * The x87 escapes D8-DF are decoded by the FPU (x86/fpu/), not listed here.
 */

/** EFLAGS bits, as named by the SDM. */
export const CF = 0x0001;
export const PF = 0x0004;
export const AF = 0x0010;
export const ZF = 0x0040;
export const SF = 0x0080;
export const TF = 0x0100;
export const IF = 0x0200;
export const DF = 0x0400;
export const OF = 0x0800;
export const IOPL = 0x3000;
export const NT = 0x4000;
export const RF = 0x10000;
export const VM = 0x20000;
export const AC = 0x40000;
export const ID = 0x200000;
/** The six arithmetic status flags. */
export const STATUS_FLAGS = CF | PF | AF | ZF | SF | OF;

/** Where an instruction may run, for the test generator: user-level integer code, or system only. */
export type OpClass = "alu" | "mov" | "stack" | "string" | "control" | "io" | "system";

export interface OpcodeForm {
  /** 0x00-0xFF, or 0x100 + second byte for 0F xx. */
  readonly opcode: number;
  /** ModRM.reg for group opcodes (0-7), or -1. */
  readonly ext: number;
  readonly mnemonic: string;
  /** Operands in SDM notation, destination first. */
  readonly operands: readonly string[];
  /** Status flags written with defined values. */
  readonly defFlags: number;
  /** Status flags the SDM leaves undefined after this instruction. */
  readonly undefFlags: number;
  readonly cls: OpClass;
}

const FLAG_LETTERS: Record<string, number> = { o: OF, s: SF, z: ZF, a: AF, p: PF, c: CF };

function flagsOf(s: string): number {
  let m = 0;
  for (const ch of s) m |= FLAG_LETTERS[ch] ?? 0;
  return m;
}

// opcode[/ext] | mnemonic | operands | defined flags | undefined flags | class
const ROWS = `
00|ADD|Eb,Gb|oszapc||alu
01|ADD|Ev,Gv|oszapc||alu
02|ADD|Gb,Eb|oszapc||alu
03|ADD|Gv,Ev|oszapc||alu
04|ADD|AL,Ib|oszapc||alu
05|ADD|eAX,Iz|oszapc||alu
06|PUSH|ES|||stack
07|POP|ES|||system
08|OR|Eb,Gb|oszpc|a|alu
09|OR|Ev,Gv|oszpc|a|alu
0A|OR|Gb,Eb|oszpc|a|alu
0B|OR|Gv,Ev|oszpc|a|alu
0C|OR|AL,Ib|oszpc|a|alu
0D|OR|eAX,Iz|oszpc|a|alu
0E|PUSH|CS|||stack
10|ADC|Eb,Gb|oszapc||alu
11|ADC|Ev,Gv|oszapc||alu
12|ADC|Gb,Eb|oszapc||alu
13|ADC|Gv,Ev|oszapc||alu
14|ADC|AL,Ib|oszapc||alu
15|ADC|eAX,Iz|oszapc||alu
16|PUSH|SS|||stack
17|POP|SS|||system
18|SBB|Eb,Gb|oszapc||alu
19|SBB|Ev,Gv|oszapc||alu
1A|SBB|Gb,Eb|oszapc||alu
1B|SBB|Gv,Ev|oszapc||alu
1C|SBB|AL,Ib|oszapc||alu
1D|SBB|eAX,Iz|oszapc||alu
1E|PUSH|DS|||stack
1F|POP|DS|||system
20|AND|Eb,Gb|oszpc|a|alu
21|AND|Ev,Gv|oszpc|a|alu
22|AND|Gb,Eb|oszpc|a|alu
23|AND|Gv,Ev|oszpc|a|alu
24|AND|AL,Ib|oszpc|a|alu
25|AND|eAX,Iz|oszpc|a|alu
27|DAA||szapc|o|alu
28|SUB|Eb,Gb|oszapc||alu
29|SUB|Ev,Gv|oszapc||alu
2A|SUB|Gb,Eb|oszapc||alu
2B|SUB|Gv,Ev|oszapc||alu
2C|SUB|AL,Ib|oszapc||alu
2D|SUB|eAX,Iz|oszapc||alu
2F|DAS||szapc|o|alu
30|XOR|Eb,Gb|oszpc|a|alu
31|XOR|Ev,Gv|oszpc|a|alu
32|XOR|Gb,Eb|oszpc|a|alu
33|XOR|Gv,Ev|oszpc|a|alu
34|XOR|AL,Ib|oszpc|a|alu
35|XOR|eAX,Iz|oszpc|a|alu
37|AAA||ac|oszp|alu
38|CMP|Eb,Gb|oszapc||alu
39|CMP|Ev,Gv|oszapc||alu
3A|CMP|Gb,Eb|oszapc||alu
3B|CMP|Gv,Ev|oszapc||alu
3C|CMP|AL,Ib|oszapc||alu
3D|CMP|eAX,Iz|oszapc||alu
3F|AAS||ac|oszp|alu
40|INC|Zv|oszap||alu
48|DEC|Zv|oszap||alu
50|PUSH|Zv|||stack
58|POP|Zv|||stack
60|PUSHA||||stack
61|POPA||||stack
62|BOUND|Gv,Ma|||control
63|ARPL|Ew,Gw|z||system
68|PUSH|Iz|||stack
69|IMUL|Gv,Ev,Iz|oc|szap|alu
6A|PUSH|Ibs|||stack
6B|IMUL|Gv,Ev,Ibs|oc|szap|alu
6C|INSB||||io
6D|INS|Xv|||io
6E|OUTSB||||io
6F|OUTS|Xv|||io
70|JO|Jb|||control
71|JNO|Jb|||control
72|JB|Jb|||control
73|JAE|Jb|||control
74|JE|Jb|||control
75|JNE|Jb|||control
76|JBE|Jb|||control
77|JA|Jb|||control
78|JS|Jb|||control
79|JNS|Jb|||control
7A|JP|Jb|||control
7B|JNP|Jb|||control
7C|JL|Jb|||control
7D|JGE|Jb|||control
7E|JLE|Jb|||control
7F|JG|Jb|||control
80/0|ADD|Eb,Ib|oszapc||alu
80/1|OR|Eb,Ib|oszpc|a|alu
80/2|ADC|Eb,Ib|oszapc||alu
80/3|SBB|Eb,Ib|oszapc||alu
80/4|AND|Eb,Ib|oszpc|a|alu
80/5|SUB|Eb,Ib|oszapc||alu
80/6|XOR|Eb,Ib|oszpc|a|alu
80/7|CMP|Eb,Ib|oszapc||alu
81/0|ADD|Ev,Iz|oszapc||alu
81/1|OR|Ev,Iz|oszpc|a|alu
81/2|ADC|Ev,Iz|oszapc||alu
81/3|SBB|Ev,Iz|oszapc||alu
81/4|AND|Ev,Iz|oszpc|a|alu
81/5|SUB|Ev,Iz|oszapc||alu
81/6|XOR|Ev,Iz|oszpc|a|alu
81/7|CMP|Ev,Iz|oszapc||alu
82/0|ADD|Eb,Ib|oszapc||alu
82/1|OR|Eb,Ib|oszpc|a|alu
82/2|ADC|Eb,Ib|oszapc||alu
82/3|SBB|Eb,Ib|oszapc||alu
82/4|AND|Eb,Ib|oszpc|a|alu
82/5|SUB|Eb,Ib|oszapc||alu
82/6|XOR|Eb,Ib|oszpc|a|alu
82/7|CMP|Eb,Ib|oszapc||alu
83/0|ADD|Ev,Ibs|oszapc||alu
83/1|OR|Ev,Ibs|oszpc|a|alu
83/2|ADC|Ev,Ibs|oszapc||alu
83/3|SBB|Ev,Ibs|oszapc||alu
83/4|AND|Ev,Ibs|oszpc|a|alu
83/5|SUB|Ev,Ibs|oszapc||alu
83/6|XOR|Ev,Ibs|oszpc|a|alu
83/7|CMP|Ev,Ibs|oszapc||alu
84|TEST|Eb,Gb|oszpc|a|alu
85|TEST|Ev,Gv|oszpc|a|alu
86|XCHG|Eb,Gb|||mov
87|XCHG|Ev,Gv|||mov
88|MOV|Eb,Gb|||mov
89|MOV|Ev,Gv|||mov
8A|MOV|Gb,Eb|||mov
8B|MOV|Gv,Ev|||mov
8C|MOV|Ew,Sw|||mov
8D|LEA|Gv,M|||mov
8E|MOV|Sw,Ew|||system
8F/0|POP|Ev|||stack
90|NOP||||mov
91|XCHG|eAX,Zv|||mov
98|CBW||||mov
99|CWD||||mov
9A|CALLF|Ap|||control
9B|FWAIT||||system
9C|PUSHF||||stack
9D|POPF||oszapc||stack
9E|SAHF||szapc||alu
9F|LAHF||||alu
A0|MOV|AL,Ob|||mov
A1|MOV|eAX,Ov|||mov
A2|MOV|Ob,AL|||mov
A3|MOV|Ov,eAX|||mov
A4|MOVSB||||string
A5|MOVS|Xv|||string
A6|CMPSB||oszapc||string
A7|CMPS|Xv|oszapc||string
A8|TEST|AL,Ib|oszpc|a|alu
A9|TEST|eAX,Iz|oszpc|a|alu
AA|STOSB||||string
AB|STOS|Xv|||string
AC|LODSB||||string
AD|LODS|Xv|||string
AE|SCASB||oszapc||string
AF|SCAS|Xv|oszapc||string
B0|MOV|Zb,Ib|||mov
B8|MOV|Zv,Iv|||mov
C0/0|ROL|Eb,Ib|oc||alu
C0/1|ROR|Eb,Ib|oc||alu
C0/2|RCL|Eb,Ib|oc||alu
C0/3|RCR|Eb,Ib|oc||alu
C0/4|SHL|Eb,Ib|oszpc|a|alu
C0/5|SHR|Eb,Ib|oszpc|a|alu
C0/6|SAL|Eb,Ib|oszpc|a|alu
C0/7|SAR|Eb,Ib|oszpc|a|alu
C1/0|ROL|Ev,Ib|oc||alu
C1/1|ROR|Ev,Ib|oc||alu
C1/2|RCL|Ev,Ib|oc||alu
C1/3|RCR|Ev,Ib|oc||alu
C1/4|SHL|Ev,Ib|oszpc|a|alu
C1/5|SHR|Ev,Ib|oszpc|a|alu
C1/6|SAL|Ev,Ib|oszpc|a|alu
C1/7|SAR|Ev,Ib|oszpc|a|alu
C2|RET|Iw|||control
C3|RET||||control
C4|LES|Gv,Mp|||system
C5|LDS|Gv,Mp|||system
C6/0|MOV|Eb,Ib|||mov
C7/0|MOV|Ev,Iz|||mov
C8|ENTER|Iw,Ib|||stack
C9|LEAVE||||stack
CA|RETF|Iw|||control
CB|RETF||||control
CC|INT3||||control
CD|INT|Ib|||control
CE|INTO||||control
CF|IRET||||control
D0/0|ROL|Eb,1|oc||alu
D0/1|ROR|Eb,1|oc||alu
D0/2|RCL|Eb,1|oc||alu
D0/3|RCR|Eb,1|oc||alu
D0/4|SHL|Eb,1|oszpc|a|alu
D0/5|SHR|Eb,1|oszpc|a|alu
D0/6|SAL|Eb,1|oszpc|a|alu
D0/7|SAR|Eb,1|oszpc|a|alu
D1/0|ROL|Ev,1|oc||alu
D1/1|ROR|Ev,1|oc||alu
D1/2|RCL|Ev,1|oc||alu
D1/3|RCR|Ev,1|oc||alu
D1/4|SHL|Ev,1|oszpc|a|alu
D1/5|SHR|Ev,1|oszpc|a|alu
D1/6|SAL|Ev,1|oszpc|a|alu
D1/7|SAR|Ev,1|oszpc|a|alu
D2/0|ROL|Eb,CL|oc||alu
D2/1|ROR|Eb,CL|oc||alu
D2/2|RCL|Eb,CL|oc||alu
D2/3|RCR|Eb,CL|oc||alu
D2/4|SHL|Eb,CL|oszpc|a|alu
D2/5|SHR|Eb,CL|oszpc|a|alu
D2/6|SAL|Eb,CL|oszpc|a|alu
D2/7|SAR|Eb,CL|oszpc|a|alu
D3/0|ROL|Ev,CL|oc||alu
D3/1|ROR|Ev,CL|oc||alu
D3/2|RCL|Ev,CL|oc||alu
D3/3|RCR|Ev,CL|oc||alu
D3/4|SHL|Ev,CL|oszpc|a|alu
D3/5|SHR|Ev,CL|oszpc|a|alu
D3/6|SAL|Ev,CL|oszpc|a|alu
D3/7|SAR|Ev,CL|oszpc|a|alu
D4|AAM|Ib|szp|oac|alu
D5|AAD|Ib|szp|oac|alu
D6|SALC||||alu
D7|XLAT||||mov
E0|LOOPNE|Jb|||control
E1|LOOPE|Jb|||control
E2|LOOP|Jb|||control
E3|JCXZ|Jb|||control
E4|IN|AL,Ib|||io
E5|IN|eAX,Ib|||io
E6|OUT|Ib,AL|||io
E7|OUT|Ib,eAX|||io
E8|CALL|Jz|||control
E9|JMP|Jz|||control
EA|JMPF|Ap|||control
EB|JMP|Jb|||control
EC|IN|AL,DX|||io
ED|IN|eAX,DX|||io
EE|OUT|DX,AL|||io
EF|OUT|DX,eAX|||io
F1|INT1||||control
F4|HLT||||system
F5|CMC||c||alu
F6/0|TEST|Eb,Ib|oszpc|a|alu
F6/1|TEST|Eb,Ib|oszpc|a|alu
F6/2|NOT|Eb|||alu
F6/3|NEG|Eb|oszapc||alu
F6/4|MUL|Eb|oc|szap|alu
F6/5|IMUL|Eb|oc|szap|alu
F6/6|DIV|Eb||oszapc|alu
F6/7|IDIV|Eb||oszapc|alu
F7/0|TEST|Ev,Iz|oszpc|a|alu
F7/1|TEST|Ev,Iz|oszpc|a|alu
F7/2|NOT|Ev|||alu
F7/3|NEG|Ev|oszapc||alu
F7/4|MUL|Ev|oc|szap|alu
F7/5|IMUL|Ev|oc|szap|alu
F7/6|DIV|Ev||oszapc|alu
F7/7|IDIV|Ev||oszapc|alu
F8|CLC||c||alu
F9|STC||c||alu
FA|CLI||||system
FB|STI||||system
FC|CLD||||alu
FD|STD||||alu
FE/0|INC|Eb|oszap||alu
FE/1|DEC|Eb|oszap||alu
FF/0|INC|Ev|oszap||alu
FF/1|DEC|Ev|oszap||alu
FF/2|CALL|Ev|||control
FF/3|CALLF|Mp|||control
FF/4|JMP|Ev|||control
FF/5|JMPF|Mp|||control
FF/6|PUSH|Ev|||stack
0F00/0|SLDT|Ew|||system
0F00/1|STR|Ew|||system
0F00/2|LLDT|Ew|||system
0F00/3|LTR|Ew|||system
0F00/4|VERR|Ew|z||system
0F00/5|VERW|Ew|z||system
0F01/0|SGDT|Ms|||system
0F01/1|SIDT|Ms|||system
0F01/2|LGDT|Ms|||system
0F01/3|LIDT|Ms|||system
0F01/4|SMSW|Ew|||system
0F01/6|LMSW|Ew|||system
0F01/7|INVLPG|M|||system
0F02|LAR|Gv,Ew|z||system
0F03|LSL|Gv,Ew|z||system
0F06|CLTS||||system
0F08|INVD||||system
0F09|WBINVD||||system
0F0B|UD2||||control
0F18|NOP|Ev|||mov
0F19|NOP|Ev|||mov
0F1A|NOP|Ev|||mov
0F1B|NOP|Ev|||mov
0F1C|NOP|Ev|||mov
0F1D|NOP|Ev|||mov
0F1E|NOP|Ev|||mov
0F1F|NOP|Ev|||mov
0F20|MOV|Rd,Cd|||system
0F21|MOV|Rd,Dd|||system
0F22|MOV|Cd,Rd|||system
0F23|MOV|Dd,Rd|||system
0F30|WRMSR||||system
0F31|RDTSC||||system
0F32|RDMSR||||system
0F34|SYSENTER||||system
0F35|SYSEXIT||||system
0F40|CMOVO|Gv,Ev|||mov
0F41|CMOVNO|Gv,Ev|||mov
0F42|CMOVB|Gv,Ev|||mov
0F43|CMOVAE|Gv,Ev|||mov
0F44|CMOVE|Gv,Ev|||mov
0F45|CMOVNE|Gv,Ev|||mov
0F46|CMOVBE|Gv,Ev|||mov
0F47|CMOVA|Gv,Ev|||mov
0F48|CMOVS|Gv,Ev|||mov
0F49|CMOVNS|Gv,Ev|||mov
0F4A|CMOVP|Gv,Ev|||mov
0F4B|CMOVNP|Gv,Ev|||mov
0F4C|CMOVL|Gv,Ev|||mov
0F4D|CMOVGE|Gv,Ev|||mov
0F4E|CMOVLE|Gv,Ev|||mov
0F4F|CMOVG|Gv,Ev|||mov
0F80|JO|Jz|||control
0F81|JNO|Jz|||control
0F82|JB|Jz|||control
0F83|JAE|Jz|||control
0F84|JE|Jz|||control
0F85|JNE|Jz|||control
0F86|JBE|Jz|||control
0F87|JA|Jz|||control
0F88|JS|Jz|||control
0F89|JNS|Jz|||control
0F8A|JP|Jz|||control
0F8B|JNP|Jz|||control
0F8C|JL|Jz|||control
0F8D|JGE|Jz|||control
0F8E|JLE|Jz|||control
0F8F|JG|Jz|||control
0F90|SETO|Eb|||mov
0F91|SETNO|Eb|||mov
0F92|SETB|Eb|||mov
0F93|SETAE|Eb|||mov
0F94|SETE|Eb|||mov
0F95|SETNE|Eb|||mov
0F96|SETBE|Eb|||mov
0F97|SETA|Eb|||mov
0F98|SETS|Eb|||mov
0F99|SETNS|Eb|||mov
0F9A|SETP|Eb|||mov
0F9B|SETNP|Eb|||mov
0F9C|SETL|Eb|||mov
0F9D|SETGE|Eb|||mov
0F9E|SETLE|Eb|||mov
0F9F|SETG|Eb|||mov
0FA0|PUSH|FS|||stack
0FA1|POP|FS|||system
0FA2|CPUID||||system
0FA3|BT|Ev,Gv|c|osap|alu
0FA4|SHLD|Ev,Gv,Ib|oszpc|a|alu
0FA5|SHLD|Ev,Gv,CL|oszpc|a|alu
0FA8|PUSH|GS|||stack
0FA9|POP|GS|||system
0FAB|BTS|Ev,Gv|c|osap|alu
0FAC|SHRD|Ev,Gv,Ib|oszpc|a|alu
0FAD|SHRD|Ev,Gv,CL|oszpc|a|alu
0FAE/0|FXSAVE|M|||system
0FAE/1|FXRSTOR|M|||system
0FAF|IMUL|Gv,Ev|oc|szap|alu
0FB0|CMPXCHG|Eb,Gb|oszapc||alu
0FB1|CMPXCHG|Ev,Gv|oszapc||alu
0FB2|LSS|Gv,Mp|||system
0FB3|BTR|Ev,Gv|c|osap|alu
0FB4|LFS|Gv,Mp|||system
0FB5|LGS|Gv,Mp|||system
0FB6|MOVZX|Gv,Eb|||mov
0FB7|MOVZX|Gv,Ew|||mov
0FBA/4|BT|Ev,Ib|c|osap|alu
0FBA/5|BTS|Ev,Ib|c|osap|alu
0FBA/6|BTR|Ev,Ib|c|osap|alu
0FBA/7|BTC|Ev,Ib|c|osap|alu
0FBB|BTC|Ev,Gv|c|osap|alu
0FBC|BSF|Gv,Ev|z|oscap|alu
0FBD|BSR|Gv,Ev|z|oscap|alu
0FBE|MOVSX|Gv,Eb|||mov
0FBF|MOVSX|Gv,Ew|||mov
0FC0|XADD|Eb,Gb|oszapc||alu
0FC1|XADD|Ev,Gv|oszapc||alu
0FC7/1|CMPXCHG8B|Mq|z||alu
0FC8|BSWAP|Zd|||alu
`;

function parseRows(): OpcodeForm[] {
  const out: OpcodeForm[] = [];
  for (const line of ROWS.trim().split("\n")) {
    const [code, mnemonic, ops, def, undef, cls] = line.split("|");
    const [hex, ext] = code.split("/");
    const opcode = hex.length === 4 ? 0x100 + parseInt(hex.slice(2), 16) : parseInt(hex, 16);
    const operands = ops === "" ? [] : ops.split(",");
    const form: OpcodeForm = {
      opcode,
      ext: ext === undefined ? -1 : Number(ext),
      mnemonic,
      operands,
      defFlags: flagsOf(def),
      undefFlags: flagsOf(undef),
      cls: cls as OpClass,
    };
    // A Z operand names a register in the opcode's low 3 bits: one row stands for eight opcodes.
    if (operands.some((o) => o[0] === "Z")) {
      // (XCHG eAX,Zv starts at 0x91: 0x90 is NOP, so it covers 0x91-0x97 only.)
      for (let r = opcode & 7; r < 8; r++) out.push({ ...form, opcode: opcode - (opcode & 7) + r });
    } else {
      out.push(form);
    }
  }
  return out;
}

/** Every integer instruction form, in opcode order. */
export const OPCODE_FORMS: readonly OpcodeForm[] = parseRows();

/** Decoder attributes per opcode (index 0x000-0x1FF). */
export const HAS_MODRM = 1;
/** Immediate: one byte. */
export const IMM8 = 2;
/** Immediate: 16 or 32 bits by operand size (z and v). */
export const IMMZ = 4;
/** Immediate: 16 bits. */
export const IMM16 = 8;
/** A moffs address: 16 or 32 bits by address size. */
export const MOFFS = 16;
/** A far pointer: 16/32-bit offset then 16-bit selector. */
export const FARPTR = 32;
/** ENTER: imm16 then imm8. */
export const IMM16_8 = 64;
/** Immediate size depends on ModRM.reg (F6/F7: only TEST /0 /1 has one). */
export const IMM_GROUP3 = 128;
/** A valid opcode on this CPU (others raise #UD). */
export const VALID = 256;

function buildDecodeAttrs(): Uint16Array {
  const a = new Uint16Array(0x200);
  const prefixes = [0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x0F];
  for (const f of OPCODE_FORMS) {
    let attr = VALID;
    for (const o of f.operands) {
      const k = o[0];
      // ModRM operands are a letter plus a lower-case size (Eb, Gv, M, Sw...); "DX", "CS"... are registers.
      if ("EGMRSCD".includes(k) && (o.length === 1 || o[1] === o[1].toLowerCase())) attr |= HAS_MODRM;
      if (o === "Ib" || o === "Ibs" || o === "Jb") attr |= IMM8;
      if (o === "Iz" || o === "Iv" || o === "Jz") attr |= IMMZ;
      if (o === "Iw") attr |= IMM16;
      if (k === "O") attr |= MOFFS;
      if (o === "Ap") attr |= FARPTR;
    }
    if (f.opcode === 0xC8) attr = VALID | IMM16_8;
    if (f.opcode === 0xF6 || f.opcode === 0xF7) attr = (attr & ~(IMM8 | IMMZ)) | IMM_GROUP3;
    a[f.opcode] |= attr;
  }
  // x87 escapes: ModRM, decoded by the FPU.
  for (let op = 0xD8; op <= 0xDF; op++) a[op] = VALID | HAS_MODRM;
  // Group opcodes listed by some of their /ext rows only still take a ModRM for all.
  for (const p of prefixes) a[p] = 0;
  return a;
}

/** Opcodes that accept LOCK with a memory destination (SDM "LOCK"); 0x100+ for 0F xx. */
export const LOCKABLE = new Uint8Array(0x200);
for (
  const op of [0x00, 0x01, 0x08, 0x09, 0x10, 0x11, 0x18, 0x19, 0x20, 0x21, 0x28, 0x29, 0x30, 0x31, 0x86, 0x87]
) LOCKABLE[op] = 0xFF;
for (const op of [0x80, 0x81, 0x82, 0x83]) LOCKABLE[op] = 0x7F; // not /7 (CMP)
for (const op of [0xF6, 0xF7]) LOCKABLE[op] = 0x0C; // NOT, NEG
for (const op of [0xFE, 0xFF]) LOCKABLE[op] = 0x03; // INC, DEC
for (const op of [0x1AB, 0x1B3, 0x1BB, 0x1B0, 0x1B1, 0x1C0, 0x1C1]) LOCKABLE[op] = 0xFF;
LOCKABLE[0x1BA] = 0xE0; // BTS BTR BTC
LOCKABLE[0x1C7] = 0x02; // CMPXCHG8B

/** Per-opcode decode attributes (bit set of HAS_MODRM, IMM8, ...), index = opcode or 0x100 + 0F-opcode. */
export const DECODE_ATTRS: Uint16Array = buildDecodeAttrs();

/**
 * The memory operand each form accesses, for segment limit and type checks (SDM Vol. 3A 5.3, 5.5),
 * index (opcode << 3) | ModRM.reg: bits 0-3 the size (MACC_* codes below, 0 = no access: LEA,
 * INVLPG, hint NOPs), bit 7 set when the instruction writes it. The E/M/O operand is the first
 * one of those kinds in the row; it is written when it is the destination (first) and the
 * instruction is not one that only reads its first operand.
 */
/** MEM_ACCESS size codes besides plain byte counts 1, 2, 4, 6 (Ms) and 8 (Mq). */
export const MACC_V = 9; // 2 or 4 by operand size
export const MACC_P = 10; // far pointer: 4 or 6
export const MACC_A = 11; // BOUND pair: 4 or 8
export const MACC_WRITE = 0x80;

function buildMemAccess(): Uint8Array {
  const readsFirst = new Set([
    "CMP",
    "TEST",
    "BT",
    "PUSH",
    "CALL",
    "CALLF",
    "JMP",
    "JMPF",
    "MUL",
    "IMUL",
    "DIV",
    "IDIV",
    "LGDT",
    "LIDT",
    "LLDT",
    "LTR",
    "LMSW",
    "VERR",
    "VERW",
  ]);
  const sizeCode: Record<string, number> = {
    b: 1,
    w: 2,
    d: 4,
    q: 8,
    s: 6,
    v: MACC_V,
    z: MACC_V,
    p: MACC_P,
    a: MACC_A,
  };
  const table = new Uint8Array(0x200 << 3);
  for (const f of OPCODE_FORMS) {
    const i = f.operands.findIndex((o) => o[0] === "E" || o[0] === "M" || o[0] === "O");
    if (i < 0 || f.mnemonic === "LEA" || f.mnemonic === "INVLPG" || f.mnemonic === "NOP") continue;
    const size = sizeCode[f.operands[i].slice(1)] ?? 0;
    if (size === 0) continue;
    const v = size | (i === 0 && !readsFirst.has(f.mnemonic) ? MACC_WRITE : 0);
    for (let reg = 0; reg < 8; reg++) if (f.ext < 0 || f.ext === reg) table[(f.opcode << 3) | reg] = v;
  }
  return table;
}

export const MEM_ACCESS: Uint8Array = buildMemAccess();
