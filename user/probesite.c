// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <capstone/capstone.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "probesite.h"
#include "procmaps.h"

#define MAX_SKIP 8

const char *mt_site_why__str(enum mt_site_why w)
{
	switch (w) {
	case MT_SITE_ENTRY_EMULATED: return "entry (emulated)";
	case MT_SITE_SKIPPED: return "after harmless instructions";
	case MT_SITE_NULL_CHECK: return "after the NULL check";
	case MT_SITE_NOP5: return "a 5-byte nop (optimized uprobe)";
	default: return "entry (single-stepped)";
	}
}

static bool in_group(const cs_insn *i, uint8_t g)
{
	for (int k = 0; k < i->detail->groups_count; k++)
		if (i->detail->groups[k] == g)
			return true;
	return false;
}

/* Instructions the x86 uprobe code emulates rather than single-steps. */
static bool emulated(const cs_insn *i)
{
	const cs_x86 *x = &i->detail->x86;

	switch (i->id) {
	case X86_INS_PUSH:
		return x->op_count == 1 && x->operands[0].type == X86_OP_REG;
	case X86_INS_NOP:
		return true;
	case X86_INS_CALL:
	case X86_INS_JMP:
		return x->op_count == 1 && x->operands[0].type == X86_OP_IMM;
	default:
		/* conditional jumps with a relative target */
		return in_group(i, CS_GRP_JUMP) && x->op_count == 1 &&
		       x->operands[0].type == X86_OP_IMM;
	}
}

/* Registers an entry probe never reads: not arguments, not rsp. */
static bool scratch_reg(uint16_t r)
{
	switch (r) {
	case X86_REG_EFLAGS:
	case X86_REG_RAX: case X86_REG_EAX: case X86_REG_AX: case X86_REG_AL: case X86_REG_AH:
	case X86_REG_R10: case X86_REG_R10D: case X86_REG_R10W: case X86_REG_R10B:
	case X86_REG_R11: case X86_REG_R11D: case X86_REG_R11W: case X86_REG_R11B:
		return true;
	default:
		return false;
	}
}

/*
 * Safe to run before the probe fires: not a branch, no memory write, and
 * writes only flags and scratch registers, so the arguments, rsp and the
 * return address at [rsp] are what they were at entry.
 */
static bool skippable(csh h, const cs_insn *i)
{
	cs_regs rd, wr;
	uint8_t nrd, nwr;
	const cs_x86 *x = &i->detail->x86;

	if (i->id == X86_INS_ENDBR64 || i->id == X86_INS_NOP)
		return true;
	if (in_group(i, CS_GRP_JUMP) || in_group(i, CS_GRP_CALL) || in_group(i, CS_GRP_RET) ||
	    in_group(i, CS_GRP_INT) || in_group(i, CS_GRP_IRET))
		return false;
	switch (i->id) {
	case X86_INS_TEST: case X86_INS_CMP: case X86_INS_MOV: case X86_INS_XOR:
	case X86_INS_LEA: case X86_INS_MOVZX: case X86_INS_MOVSXD:
		break;
	default:
		return false; /* anything rarer: not worth proving */
	}
	for (int k = 0; k < x->op_count; k++)
		if (x->operands[k].type == X86_OP_MEM && (x->operands[k].access & CS_AC_WRITE))
			return false;
	if (cs_regs_access(h, i, rd, &nrd, wr, &nwr))
		return false;
	for (int k = 0; k < nwr; k++)
		if (!scratch_reg(wr[k]))
			return false;
	return true;
}

static bool is_test_rdi_rdi(const cs_insn *i)
{
	const cs_x86 *x = &i->detail->x86;

	return i->id == X86_INS_TEST && x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
	       x->operands[1].type == X86_OP_REG && x->operands[0].reg == X86_REG_RDI &&
	       x->operands[1].reg == X86_REG_RDI;
}

/* Is the instruction at code[off] a plain return? */
static bool is_ret_at(csh h, const uint8_t *code, size_t len, uint64_t off)
{
	cs_insn *i;
	bool ret;

	if (off >= len || cs_disasm(h, code + off, len - off, off, 1, &i) != 1)
		return false;
	ret = i->id == X86_INS_RET && i->detail->x86.op_count == 0;
	cs_free(i, 1);
	return ret;
}

static void fill(struct mt_site *out, const cs_insn *i, enum mt_site_why why)
{
	out->delta = i->address;
	out->why = why;
	snprintf(out->first_insn, sizeof(out->first_insn), "%.15s %.47s", i->mnemonic, i->op_str);
}

int mt_probesite__choose(const uint8_t *code, size_t len, bool free_like, struct mt_site *out)
{
	cs_insn *insn = NULL;
	size_t n;
	csh h;

	memset(out, 0, sizeof(*out));
	out->why = MT_SITE_ENTRY_FALLBACK;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return -EINVAL;
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	n = cs_disasm(h, code, len, 0, MAX_SKIP + 1, &insn);
	for (size_t k = 0; k < n && k <= MAX_SKIP; k++) {
		const cs_insn *i = &insn[k];

		if (emulated(i)) {
			/* past free's `test rdi,rdi; je ret` when what follows is
			 * emulated too; else on the branch itself */
			if (free_like && k && is_test_rdi_rdi(&insn[k - 1]) && i->id == X86_INS_JE &&
			    is_ret_at(h, code, len, i->detail->x86.operands[0].imm) && k + 1 < n &&
			    emulated(&insn[k + 1]))
				fill(out, &insn[k + 1], MT_SITE_NULL_CHECK);
			else
				fill(out, i, k ? MT_SITE_SKIPPED : MT_SITE_ENTRY_EMULATED);
			break;
		}
		if (!skippable(h, i))
			break;
	}
	if (out->why == MT_SITE_ENTRY_FALLBACK && n)
		fill(out, &insn[0], MT_SITE_ENTRY_FALLBACK);
	cs_free(insn, n);
	cs_close(&h);
	return 0;
}

/* int3 over the first byte of nopl 0x0(%rax,%rax,1): a site armed, not
 * yet optimized */
const uint8_t mt_probesite__nop5_armed[5] = { 0xcc, 0x1f, 0x44, 0x00, 0x00 };

bool mt_probesite__orphan_call(const uint8_t code[5], uint64_t vaddr,
			       const struct mt_maps *maps)
{
	int32_t rel;

	if (code[0] != 0xe8)
		return false;
	memcpy(&rel, code + 1, sizeof(rel));
	return !mt_procmaps__find(maps, vaddr + 5 + (int64_t)rel);
}
