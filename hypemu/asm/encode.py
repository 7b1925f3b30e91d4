"""What keystone cannot encode: ERET, HVC, SMC, banked MSR/MRS (ARM ARM B9.3), and the condition
and register names their operands use."""

from __future__ import annotations

import re


_CONDITIONS = {"eq": 0, "ne": 1, "cs": 2, "hs": 2, "cc": 3, "lo": 3, "mi": 4, "pl": 5, "vs": 6,
               "vc": 7, "hi": 8, "ls": 9, "ge": 10, "lt": 11, "gt": 12, "le": 13, "al": 14}
_COND_AL = 14
_REGISTERS = {**{f"r{i}": i for i in range(16)},
              "sb": 9, "sl": 10, "fp": 11, "ip": 12, "sp": 13, "lr": 14, "pc": 15}

# Banked registers: name -> (R, SYSm), ARM ARM B9.2.3 "Banked register encodings" (Table B9-2).
_BANKED = {
    "r8_usr": (0, 0b00000), "r9_usr": (0, 0b00001), "r10_usr": (0, 0b00010), "r11_usr": (0, 0b00011),
    "r12_usr": (0, 0b00100), "sp_usr": (0, 0b00101), "lr_usr": (0, 0b00110),
    "r8_fiq": (0, 0b01000), "r9_fiq": (0, 0b01001), "r10_fiq": (0, 0b01010), "r11_fiq": (0, 0b01011),
    "r12_fiq": (0, 0b01100), "sp_fiq": (0, 0b01101), "lr_fiq": (0, 0b01110),
    "lr_irq": (0, 0b10000), "sp_irq": (0, 0b10001),
    "lr_svc": (0, 0b10010), "sp_svc": (0, 0b10011),
    "lr_abt": (0, 0b10100), "sp_abt": (0, 0b10101),
    "lr_und": (0, 0b10110), "sp_und": (0, 0b10111),
    "lr_mon": (0, 0b11100), "sp_mon": (0, 0b11101),
    "elr_hyp": (0, 0b11110), "sp_hyp": (0, 0b11111),
    "spsr_fiq": (1, 0b01110), "spsr_irq": (1, 0b10000), "spsr_svc": (1, 0b10010),
    "spsr_abt": (1, 0b10100), "spsr_und": (1, 0b10110), "spsr_mon": (1, 0b11100),
    "spsr_hyp": (1, 0b11110),
}
_SPECIAL_RE = re.compile(r"(eret|hvc|smc|mrs|msr)(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?")


def _encode_eret(cond: int) -> int:
    """ERET A1 (B9.3.3): cond 0001 0110 0000 0000 0000 0110 1110."""
    return cond << 28 | 0x0160006E


def _encode_hvc(imm16: int) -> int:
    """HVC A1 (B9.3.4): 1110 0001 0100 imm12 0111 imm4; imm16 = imm12:imm4; unconditional."""
    return 0xE1400070 | (imm16 >> 4) << 8 | imm16 & 0xF


def _encode_smc(cond: int, imm4: int) -> int:
    """SMC A1 (B9.3.14): cond 0001 0110 0000 0000 0000 0111 imm4."""
    return cond << 28 | 0x01600070 | imm4


def _encode_mrs_banked(cond: int, rd: int, r: int, sysm: int) -> int:
    """MRS (banked register) A1 (B9.3.9): cond 0001 0R00 M1 Rd 001M 0000 0000, SYSm = M:M1."""
    return cond << 28 | 0x01000200 | r << 22 | (sysm & 0xF) << 16 | rd << 12 | (sysm >> 4) << 8


def _encode_msr_banked(cond: int, r: int, sysm: int, rn: int) -> int:
    """MSR (banked register) A1 (B9.3.10): cond 0001 0R10 M1 1111 001M 0000 Rn, SYSm = M:M1."""
    return cond << 28 | 0x0120F200 | r << 22 | (sysm & 0xF) << 16 | (sysm >> 4) << 8 | rn


# The T32 encodings of the same instructions, as hw1 << 16 | hw2 (no condition field: inside an
# IT block the IT instruction gives it).
def _encode_eret_t32() -> int:
    """ERET T1 (B9.3.3), which is SUBS PC, LR, #0: 1111 0011 1101 1110 1000 1111 0000 0000."""
    return 0xF3DE8F00


def _encode_hvc_t32(imm16: int) -> int:
    """HVC T1 (B9.3.4): 1111 0111 1110 imm4 1000 imm12; imm16 = imm4:imm12."""
    return 0xF7E08000 | (imm16 >> 12) << 16 | imm16 & 0xFFF


def _encode_smc_t32(imm4: int) -> int:
    """SMC T1 (B9.3.14): 1111 0111 1111 imm4 1000 0000 0000 0000."""
    return 0xF7F08000 | imm4 << 16


def _encode_mrs_banked_t32(rd: int, r: int, sysm: int) -> int:
    """MRS (banked register) T1 (B9.3.9): 1111 0011 111R M1 1000 Rd 001M 0000."""
    return 0xF3E08020 | r << 20 | (sysm & 0xF) << 16 | rd << 8 | (sysm >> 4) << 4


def _encode_msr_banked_t32(r: int, sysm: int, rn: int) -> int:
    """MSR (banked register) T1 (B9.3.10): 1111 0011 100R Rn 1000 M1 001M 0000."""
    return 0xF3808020 | r << 20 | rn << 16 | (sysm & 0xF) << 8 | (sysm >> 4) << 4
