/* wipe.h: leaving no copy of a secret behind. */
#ifndef PADDOCK_WIPE_H
#define PADDOCK_WIPE_H

/* Zero 64 KiB of stack below the caller's frame: what finished calls left
 * there (a secret's value passing through) must not be copied into a child
 * forked next. */
void pd_scrub_stack(void);

#endif
