"""SystemInfo stream and the OS/CPU strings Breakpad derives from it (docs/formats/minidump.md
§3.5)."""

from __future__ import annotations

from dataclasses import dataclass

from procsupervisor.workers.stackwalker.minidump.reader import ByteView, MinidumpFormatError
from procsupervisor.workers.stackwalker.minidump.strings import read_minidump_string

SYSTEM_INFO_SIZE = 56

ARCH_X86 = 0
ARCH_MIPS = 1
ARCH_PPC = 3
ARCH_SHX = 4
ARCH_ARM = 5
ARCH_AMD64 = 9
ARCH_X86_WIN64 = 10
ARCH_ARM64 = 12
ARCH_SPARC = 0x8001
ARCH_PPC64 = 0x8002
ARCH_ARM64_OLD = 0x8003
ARCH_MIPS64 = 0x8004
ARCH_RISCV = 0x8005
ARCH_RISCV64 = 0x8006

CPU_NAMES = {
    ARCH_X86: "x86",
    ARCH_MIPS: "mips",
    ARCH_PPC: "ppc",
    ARCH_ARM: "arm",
    ARCH_AMD64: "amd64",
    ARCH_ARM64: "arm64",
    ARCH_SPARC: "sparc",
    ARCH_PPC64: "ppc64",
    ARCH_ARM64_OLD: "arm64",
    ARCH_MIPS64: "mips64",
    ARCH_RISCV: "riscv",
    ARCH_RISCV64: "riscv64",
}

# Breakpad masks the crash address to 32 bits for these (docs/formats/minidump.md §7.4).
ARCHES_32BIT_CRASH_ADDRESS = frozenset(
    {ARCH_X86, ARCH_MIPS, ARCH_PPC, ARCH_SHX, ARCH_ARM, ARCH_X86_WIN64}
)

PLATFORM_WIN32_WINDOWS = 1
PLATFORM_WIN32_NT = 2
PLATFORM_MAC = 0x8101
PLATFORM_IOS = 0x8102
PLATFORM_LINUX = 0x8201
PLATFORM_SOLARIS = 0x8202
PLATFORM_ANDROID = 0x8203
PLATFORM_PS3 = 0x8204
PLATFORM_NACL = 0x8205
PLATFORM_FUCHSIA = 0x8206

OS_NAMES = {
    PLATFORM_WIN32_WINDOWS: ("Windows", "windows"),
    PLATFORM_WIN32_NT: ("Windows NT", "windows"),
    PLATFORM_MAC: ("Mac OS X", "mac"),
    PLATFORM_IOS: ("iOS", "ios"),
    PLATFORM_LINUX: ("Linux", "linux"),
    PLATFORM_SOLARIS: ("Solaris", "solaris"),
    PLATFORM_ANDROID: ("Android", "android"),
    PLATFORM_PS3: ("PS3", "ps3"),
    PLATFORM_NACL: ("NaCl", "nacl"),
    PLATFORM_FUCHSIA: ("Fuchsia", "fuchsia"),
}

ARM_VENDORS = {0x41: "ARM", 0x51: "Qualcomm", 0x56: "Marvell", 0x69: "Intel/Marvell"}
ARM_PARTS = {
    0x4100C050: "Cortex-A5",
    0x4100C080: "Cortex-A8",
    0x4100C090: "Cortex-A9",
    0x4100C0F0: "Cortex-A15",
    0x4100B360: "ARM1136",
    0x4100B560: "ARM1156",
    0x4100B760: "ARM1176",
    0x4100B020: "ARM11-MPCore",
    0x41009260: "ARM926",
    0x41009460: "ARM946",
    0x41009660: "ARM966",
    0x510006F0: "Krait",
    0x5100F000: "Scorpion",
}
ARM_HWCAPS = [
    "swp", "half", "thumb", "26bit", "fastmult", "fpa", "vfpv2", "edsp", "java", "iwmmxt",
    "crunch", "thumbee", "neon", "vfpv3", "vfpv3d16", "tls", "vfpv4", "idiva", "idivt",
]  # fmt: skip


@dataclass
class SystemInfo:
    processor_architecture: int
    processor_level: int
    processor_revision: int
    number_of_processors: int
    product_type: int
    major_version: int
    minor_version: int
    build_number: int
    platform_id: int
    csd_version: str | None  # None: the CSD string could not be read
    suite_mask: int
    x86_vendor: str
    x86_version_information: int
    x86_feature_information: int
    arm_cpuid: int
    arm_elf_hwcaps: int

    @property
    def cpu(self) -> str:
        return CPU_NAMES.get(self.processor_architecture, f"0x{self.processor_architecture:04x}")

    @property
    def os(self) -> str:
        names = OS_NAMES.get(self.platform_id)
        return names[0] if names else f"0x{self.platform_id:08x}"

    @property
    def os_short(self) -> str:
        names = OS_NAMES.get(self.platform_id)
        return names[1] if names else ""

    @property
    def os_version(self) -> str:
        version = f"{self.major_version}.{self.minor_version}.{self.build_number}"
        if self.csd_version is not None:
            version += " " + self.csd_version
        return version

    @property
    def is_windows(self) -> bool:
        return self.platform_id in (PLATFORM_WIN32_WINDOWS, PLATFORM_WIN32_NT)

    @property
    def cpu_info(self) -> str:
        arch = self.processor_architecture
        if arch in (ARCH_X86, ARCH_AMD64):
            text = (
                f"family {self.processor_level} model {self.processor_revision >> 8} "
                f"stepping {self.processor_revision & 0xFF}"
            )
            if arch == ARCH_X86:
                text = f"{self.x86_vendor} {text}"
            return text
        if arch == ARCH_ARM:
            return self._arm_cpu_info()
        return ""

    def _arm_cpu_info(self) -> str:
        text = f"ARMv{self.processor_level}"
        cpuid = self.arm_cpuid
        if cpuid:
            vendor_id = (cpuid >> 24) & 0xFF
            vendor = ARM_VENDORS.get(vendor_id, f"vendor(0x{vendor_id:x})")
            part_key = cpuid & 0xFF00FFF0
            part = ARM_PARTS.get(part_key, f"part(0x{part_key:x})")
            text += f" {vendor} {part}"
        if self.arm_elf_hwcaps:
            names = [n for bit, n in enumerate(ARM_HWCAPS) if self.arm_elf_hwcaps & (1 << bit)]
            text += " features: " + ",".join(names)
        return text

    @property
    def pointer_width(self) -> int:
        """Bytes per pointer; used to pick 32- or 64-bit layouts of auxv and DSO debug."""
        return 4 if self.processor_architecture in ARCHES_32BIT_CRASH_ADDRESS else 8


def parse_system_info(stream: ByteView, file: ByteView) -> SystemInfo:
    if stream.size < SYSTEM_INFO_SIZE:
        raise MinidumpFormatError(f"SystemInfo stream of {stream.size} bytes")
    arch, level, revision, ncpu, product = stream.unpack("HHHBB", 0)
    major, minor, build, platform, csd_rva = stream.unpack("IIIII", 8)
    suite_mask = stream.u16(28)
    vendor_raw = stream.bytes_at(32, 12)
    if not stream.little_endian:
        vendor_raw = b"".join(vendor_raw[i : i + 4][::-1] for i in range(0, 12, 4))
    vendor = vendor_raw.split(b"\0", 1)[0].decode("latin-1")
    version_info, feature_info = stream.unpack("II", 44)
    cpuid, hwcaps = stream.unpack("II", 32)
    try:
        csd: str | None = read_minidump_string(file, csd_rva)
    except MinidumpFormatError:
        csd = None
    return SystemInfo(
        processor_architecture=arch,
        processor_level=level,
        processor_revision=revision,
        number_of_processors=ncpu,
        product_type=product,
        major_version=major,
        minor_version=minor,
        build_number=build,
        platform_id=platform,
        csd_version=csd,
        suite_mask=suite_mask,
        x86_vendor=vendor,
        x86_version_information=version_info,
        x86_feature_information=feature_info,
        arm_cpuid=cpuid,
        arm_elf_hwcaps=hwcaps,
    )
