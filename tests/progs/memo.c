// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Built without frame pointers (rbp is data): stacks that a remembered
 * walk (walk_memo) could get wrong. Every allocation reaches malloc from
 * the same place, wrapper():
 *   mix: ROUNDS times, grand_a and grand_b (the same code, so the same
 *        frame sizes) each call parent, which calls wrapper from three
 *        call sites: malloc(101), malloc(202), malloc(303). Six stacks
 *        from one start (pc and sp at malloc's return) that differ only
 *        in return addresses above wrapper's frame,
 *        with a new value every round in the rbp that wrapper saves.
 *   loop: LOOP times, grand_a -> loop_parent -> wrapper: malloc(404).
 * Everything is freed at once. Prints "done".
 * Built again with -DFAR=N as memo_far: parent and loop_parent keep N bytes
 * on the stack, so the words above them lie more than a check's window
 * (MT_MEMO_WIN) above the start and each check reads the stack twice.
 */
#include "testprog.h"

#define ROUNDS 200
#define LOOP 2000

static volatile long sink;

#ifdef FAR
#define FAR_FRAME(round)                                                \
	volatile char far_frame[FAR];                                   \
	far_frame[0] = (char)(round)
#else
#define FAR_FRAME(round) (void)0
#endif

NOINLINE void *wrapper(size_t n)
{
	void *p = malloc(n);

	asm volatile("" : : : "rbp"); /* saves the caller's rbp on the stack */
	sink += (long)n;
	return p;
}

NOINLINE void parent(long round)
{
	FAR_FRAME(round);
	hold(wrapper(101));
	sink ^= round;
	hold(wrapper(202));
	sink += round;
	hold(wrapper(303));
}

NOINLINE void loop_parent(long round)
{
	FAR_FRAME(round);
	hold(wrapper(404));
	sink -= round;
}

/* rbp, a general register here, holds round * k across the call:
 * wrapper saves it on the stack, a different value every round. */
#define GRAND(name)                                                     \
	NOINLINE void name(void (*fn)(long), long round)                \
	{                                                               \
		register long v asm("rbp") = round * 0x9e3779b97f4a7c15L; \
		asm volatile("" : "+r"(v));                             \
		fn(round);                                              \
		asm volatile("" : : "r"(v));                            \
		sink += v;                                              \
	}
GRAND(grand_a)
GRAND(grand_b)

int main(void)
{
	for (long i = 0; i < ROUNDS; i++) {
		grand_a(parent, i);
		grand_b(parent, i);
	}
	for (long i = 0; i < LOOP; i++)
		grand_a(loop_parent, i);
	for (size_t i = 0; i < nkeep && i < 4096; i++)
		free(keep[i]);
	printf("done\n");
	return 0;
}
