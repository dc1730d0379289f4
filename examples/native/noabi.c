/* SPDX-License-Identifier: BSD-3-Clause */
/* noabi.c - a shared object that does not declare a plugin ABI. */
int noabi_answer(void);

/* Not a plugin function: the engine refuses the library before this. */
int
noabi_answer(void)
{
	return 42;
}
