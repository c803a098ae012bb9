/**
 * Reads what tests/package/binaries.ts checks in a built library, from its
 * headers, with no tool from the machine: ELF (Linux) and 64-bit Mach-O
 * (macOS), little-endian only, which covers every platform we ship.
 *
 * Every offset read from the file is bounds-checked by DataView (a
 * truncated file throws a RangeError, which fails the test).
 *
 * @module
 */

/** What a shared library says about itself. */
export interface LibraryFacts {
  format: "elf" | "macho";
  /** "x86_64" or "aarch64" (ELF), "x86_64" or "arm64" (Mach-O). */
  arch: string;
  /** A shared library (ELF ET_DYN, Mach-O MH_DYLIB). */
  shared: boolean;
  /** Defined, exported function names (Mach-O names without the leading underscore). */
  exports: string[];
  /** The libraries it links against (ELF DT_NEEDED, Mach-O LC_LOAD_DYLIB). */
  needed: string[];
  /** ELF: the symbol versions it needs from each library, e.g. "GLIBC_2.17". */
  versionsNeeded: string[];
  /** ELF: whether it has a .symtab (stripped libraries keep only .dynsym). */
  hasSymtab: boolean;
  /** Whether it carries debug information (ELF .debug_* sections, Mach-O __DWARF). */
  hasDebugInfo: boolean;
  /** Mach-O: LC_BUILD_VERSION's platform (1 = macOS) and minimum OS, "13.0". */
  buildPlatform?: number;
  minOs?: string;
}

function cString(bytes: Uint8Array, offset: number): string {
  let end = offset;
  while (end < bytes.length && bytes[end] !== 0) end++;
  if (end >= bytes.length) throw new RangeError(`unterminated string at ${offset}`);
  return new TextDecoder().decode(bytes.subarray(offset, end));
}

const ELF_MACHINES: Record<number, string> = { 62: "x86_64", 183: "aarch64" };
const SHT_SYMTAB = 2;
const SHT_DYNAMIC = 6;
const SHT_DYNSYM = 11;
const SHT_GNU_VERNEED = 0x6ffffffe;
const DT_NEEDED = 1;

function readElf(bytes: Uint8Array, view: DataView): LibraryFacts {
  if (bytes[4] !== 2 || bytes[5] !== 1) throw new Error("not a 64-bit little-endian ELF file");
  const type = view.getUint16(16, true);
  const machine = view.getUint16(18, true);
  const shoff = Number(view.getBigUint64(40, true));
  const shentsize = view.getUint16(58, true);
  const shnum = view.getUint16(60, true);
  const shstrndx = view.getUint16(62, true);
  const sections = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * shentsize;
    return {
      name: view.getUint32(at, true),
      type: view.getUint32(at + 4, true),
      offset: Number(view.getBigUint64(at + 24, true)),
      size: Number(view.getBigUint64(at + 32, true)),
      link: view.getUint32(at + 40, true),
      info: view.getUint32(at + 44, true),
    };
  });
  const facts: LibraryFacts = {
    format: "elf",
    arch: ELF_MACHINES[machine] ?? `machine ${machine}`,
    shared: type === 3,
    exports: [],
    needed: [],
    versionsNeeded: [],
    hasSymtab: sections.some((s) => s.type === SHT_SYMTAB),
    hasDebugInfo: false,
  };
  const names = sections[shstrndx]?.offset ?? 0;
  facts.hasDebugInfo = sections.some((s) => cString(bytes, names + s.name).startsWith(".debug"));
  for (const section of sections) {
    const strtab = sections[section.link]?.offset ?? 0;
    if (section.type === SHT_DYNSYM) {
      for (let at = section.offset + 24; at < section.offset + section.size; at += 24) {
        const info = view.getUint8(at + 4);
        const shndx = view.getUint16(at + 6, true);
        const global = info >> 4 === 1 || info >> 4 === 2;
        if (global && (info & 0xf) === 2 && shndx !== 0) {
          facts.exports.push(cString(bytes, strtab + view.getUint32(at, true)));
        }
      }
    } else if (section.type === SHT_DYNAMIC) {
      for (let at = section.offset; at < section.offset + section.size; at += 16) {
        if (view.getBigInt64(at, true) === BigInt(DT_NEEDED)) {
          facts.needed.push(cString(bytes, strtab + Number(view.getBigUint64(at + 8, true))));
        }
      }
    } else if (section.type === SHT_GNU_VERNEED) {
      // sh_info entries of Verneed, each with vn_cnt Vernaux records.
      let need = section.offset;
      for (let i = 0; i < section.info; i++) {
        const count = view.getUint16(need + 2, true);
        let aux = need + view.getUint32(need + 8, true);
        for (let j = 0; j < count; j++) {
          facts.versionsNeeded.push(cString(bytes, strtab + view.getUint32(aux + 8, true)));
          aux += view.getUint32(aux + 12, true);
        }
        need += view.getUint32(need + 12, true);
      }
    }
  }
  return facts;
}

const MACHO_CPUS: Record<number, string> = { 0x01000007: "x86_64", 0x0100000c: "arm64" };
const LC_SYMTAB = 0x2;
const LC_SEGMENT_64 = 0x19;
const LC_LOAD_DYLIB = 0xc;
const LC_BUILD_VERSION = 0x32;

function readMachO(bytes: Uint8Array, view: DataView): LibraryFacts {
  const cpu = view.getUint32(4, true);
  const facts: LibraryFacts = {
    format: "macho",
    arch: MACHO_CPUS[cpu] ?? `cputype ${cpu}`,
    shared: view.getUint32(12, true) === 6,
    exports: [],
    needed: [],
    versionsNeeded: [],
    hasSymtab: false,
    hasDebugInfo: false,
  };
  const ncmds = view.getUint32(16, true);
  let at = 32;
  for (let i = 0; i < ncmds; i++) {
    const cmd = view.getUint32(at, true);
    const size = view.getUint32(at + 4, true);
    if (cmd === LC_SEGMENT_64) {
      // segname is 16 bytes, NUL-padded (not terminated when 16 long).
      const segname = new TextDecoder().decode(bytes.subarray(at + 8, at + 24)).replace(/\0+$/, "");
      if (segname === "__DWARF") facts.hasDebugInfo = true;
    } else if (cmd === LC_BUILD_VERSION) {
      facts.buildPlatform = view.getUint32(at + 8, true);
      const minos = view.getUint32(at + 12, true);
      facts.minOs = `${minos >>> 16}.${(minos >>> 8) & 0xff}`;
    } else if (cmd === LC_LOAD_DYLIB) {
      facts.needed.push(cString(bytes, at + view.getUint32(at + 8, true)));
    } else if (cmd === LC_SYMTAB) {
      const symoff = view.getUint32(at + 8, true);
      const nsyms = view.getUint32(at + 12, true);
      const stroff = view.getUint32(at + 16, true);
      for (let s = 0; s < nsyms; s++) {
        const entry = symoff + s * 16;
        const type = view.getUint8(entry + 4);
        // N_EXT and N_TYPE == N_SECT: an external symbol defined here.
        if ((type & 0x01) !== 0 && (type & 0x0e) === 0x0e) {
          const name = cString(bytes, stroff + view.getUint32(entry, true));
          facts.exports.push(name.startsWith("_") ? name.slice(1) : name);
        }
      }
    }
    if (size < 8) throw new RangeError(`load command ${i} has size ${size}`);
    at += size;
  }
  return facts;
}

/** Reads the facts of an ELF or 64-bit Mach-O shared library. */
export function readLibrary(bytes: Uint8Array): LibraryFacts {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, false) === 0x7f454c46) return readElf(bytes, view);
  if (view.getUint32(0, true) === 0xfeedfacf) return readMachO(bytes, view);
  throw new Error("neither ELF nor 64-bit Mach-O");
}
